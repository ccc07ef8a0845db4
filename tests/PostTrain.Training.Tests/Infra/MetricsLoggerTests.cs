// metrics.jsonl content, resume truncation, and the TensorBoard event file read back record by record
// (TFRecord framing: u64 length, masked CRC32C of the length, data, masked CRC32C of the data; data is an
// Event protobuf, decoded here just enough to read step, tag and value).
using System.Text;
using System.Text.Json;
using PostTrain.Training.Infra;

namespace PostTrain.Training.Tests.Infra;

public sealed class MetricsLoggerTests
{
    private static Func<DateTimeOffset> Clock(params double[] unixSeconds)
    {
        int i = 0;
        return () => DateTimeOffset.FromUnixTimeMilliseconds((long)(unixSeconds[Math.Min(i++, unixSeconds.Length - 1)] * 1000));
    }

    [Fact]
    public void Writes_one_json_object_per_step()
    {
        using var tmp = new TempDir();
        using (var m = new MetricsLogger(tmp.Path, tensorboard: false, clock: Clock(1000, 1001.5, 1003.25)))
        {
            m.Log(1, ("loss", 2.5), ("lr", 1e-4));
            m.Log(2, ("loss", double.NaN), ("grad_norm", 0.75));
            // flushed after every line: readable while the logger is open
            Assert.Equal(2, File.ReadAllLines(m.JsonlPath).Length);
        }
        var lines = File.ReadAllLines(tmp["metrics.jsonl"]);
        Assert.Equal("""{"step":1,"time":1001.5,"elapsed_s":1.5,"loss":2.5,"lr":0.0001}""", lines[0]);
        Assert.Equal("""{"step":2,"time":1003.25,"elapsed_s":3.25,"loss":"NaN","grad_norm":0.75}""", lines[1]);
        Assert.False(Directory.Exists(tmp["tensorboard"]));
    }

    [Fact]
    public void Resume_drops_lines_after_the_checkpoint_and_a_torn_line()
    {
        using var tmp = new TempDir();
        using (var m = new MetricsLogger(tmp.Path, false, clock: Clock(0)))
            for (int s = 1; s <= 5; s++) m.Log(s, ("loss", s));
        File.AppendAllText(tmp["metrics.jsonl"], """{"step":6,"ti""");
        using (var m = new MetricsLogger(tmp.Path, false, resumedFromStep: 3, clock: Clock(0)))
            m.Log(4, ("loss", 40));
        var steps = File.ReadAllLines(tmp["metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement);
        Assert.Equal([(1L, 1.0), (2L, 2.0), (3L, 3.0), (4L, 40.0)],
            steps.Select(e => (e.GetProperty("step").GetInt64(), e.GetProperty("loss").GetDouble())));

        // a fresh (not resumed) run starts a new file
        using (var m = new MetricsLogger(tmp.Path, false, clock: Clock(0))) m.Log(1, ("loss", 9));
        Assert.Single(File.ReadAllLines(tmp["metrics.jsonl"]));
    }

    [Fact]
    public void Tensorboard_event_file_has_valid_records_with_the_scalars()
    {
        using var tmp = new TempDir();
        using (var m = new MetricsLogger(tmp.Path, tensorboard: true, clock: Clock(1000)))
        {
            m.Log(1, ("train/loss", 2.5), ("lr", 0.125));
            m.Log(2, ("train/loss", 1.75));
        }
        var file = Assert.Single(Directory.GetFiles(tmp["tensorboard"], "events.out.tfevents.*"));
        var records = ReadRecords(File.ReadAllBytes(file));

        Assert.Equal(4, records.Count); // file-version header + 3 scalars
        Assert.Contains("brain.Event:2", Encoding.UTF8.GetString(records[0]));
        var scalars = records.Skip(1).Select(ParseScalarEvent).ToList();
        Assert.Equal([(1L, "train/loss", 2.5f), (1L, "lr", 0.125f), (2L, "train/loss", 1.75f)], scalars.Select(s => (s.Step, s.Tag, s.Value)));
        Assert.All(scalars, s => Assert.Equal(1000.0, s.WallTime));
    }

    private static List<byte[]> ReadRecords(byte[] bytes)
    {
        var records = new List<byte[]>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            Assert.True(pos + 12 <= bytes.Length, $"truncated record header at byte {pos}");
            ulong length = BitConverter.ToUInt64(bytes, pos);
            Assert.Equal(MaskedCrc(bytes.AsSpan(pos, 8)), BitConverter.ToUInt32(bytes, pos + 8));
            pos += 12;
            Assert.True(pos + (int)length + 4 <= bytes.Length, $"truncated record data at byte {pos}");
            var data = bytes.AsSpan(pos, (int)length);
            Assert.Equal(MaskedCrc(data), BitConverter.ToUInt32(bytes, pos + (int)length));
            records.Add(data.ToArray());
            pos += (int)length + 4;
        }
        return records;
    }

    // Event { double wall_time = 1; int64 step = 2; Summary summary = 5; }
    // Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
    private static (double WallTime, long Step, string Tag, float Value) ParseScalarEvent(byte[] data)
    {
        double wall = 0; long step = 0; string tag = ""; float value = float.NaN;
        foreach (var (field, raw, payload) in Fields(data))
        {
            if (field == 1) wall = BitConverter.Int64BitsToDouble((long)raw);
            else if (field == 2) step = (long)raw;
            else if (field == 5)
            {
                var summaryValue = Fields(payload!).Single(f => f.Field == 1).Payload!;
                foreach (var (f, r, p) in Fields(summaryValue))
                {
                    if (f == 1) tag = Encoding.UTF8.GetString(p!);
                    if (f == 2) value = BitConverter.Int32BitsToSingle((int)r);
                }
            }
        }
        return (wall, step, tag, value);
    }

    private static List<(int Field, ulong Raw, byte[]? Payload)> Fields(byte[] data)
    {
        var result = new List<(int, ulong, byte[]?)>();
        int pos = 0;
        ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = data[pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
        }
        while (pos < data.Length)
        {
            ulong key = Varint();
            int field = (int)(key >> 3);
            switch (key & 7)
            {
                case 0: result.Add((field, Varint(), null)); break;
                case 1: result.Add((field, BitConverter.ToUInt64(data, pos), null)); pos += 8; break;
                case 5: result.Add((field, BitConverter.ToUInt32(data, pos), null)); pos += 4; break;
                case 2:
                    int len = (int)Varint();
                    result.Add((field, 0, data[pos..(pos + len)]));
                    pos += len;
                    break;
                default: throw new InvalidDataException($"wire type {key & 7}");
            }
        }
        return result;
    }

    // CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), masked as TFRecord does.
    private static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
        }
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8;
    }

    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        // CRC-32C of "123456789" is 0xE3069283; masked: rotr15 + 0xa282ead8.
        uint crc = 0xE3069283;
        Assert.Equal(((crc >> 15) | (crc << 17)) + 0xa282ead8, MaskedCrc("123456789"u8));
    }
}
