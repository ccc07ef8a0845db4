// Expert stacks gathered over an expert-parallel group on demand, for the one rank that writes a checkpoint (the group's
// rank 0). The writer asks for a stack by name when its file writer reaches it; every rank of the group then joins that
// one gather (the writer first broadcasts which stack, as an index into the sorted list of names every rank builds
// alike), and the writer keeps at most Capacity gathered stacks on its host, dropping the least recently used. So a
// save never holds all routed experts (a 16B model's are ~30 GB in bf16, their AdamW moments ~120 GB in fp32) in one
// process. The other ranks of the group Serve until the writer says Finish (also when its save fails).
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed class ExpertGatherStream : IDisposable
{
    private const long Done = -1;

    private readonly ProcessGroup group;
    private readonly string[] names;
    private readonly Dictionary<string, Tensor> local;
    private readonly LinkedList<(string Name, Tensor Host)> held = new();
    private bool finished;

    /// <param name="group">The expert-parallel group; its rank 0 writes.</param>
    /// <param name="localStacks">This rank's rows of every stack the writer may ask for, by name (the same names on
    /// every rank of the group; equal row counts per rank).</param>
    /// <param name="capacity">How many gathered stacks the writer keeps on its host (a layer's gate, up and down
    /// projections are asked for together, so 3 gathers each once in a name-ordered save).</param>
    public ExpertGatherStream(ProcessGroup group, IReadOnlyDictionary<string, Tensor> localStacks, int capacity = 3)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity));
        this.group = group;
        local = localStacks.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        names = [.. local.Keys.OrderBy(n => n, StringComparer.Ordinal)];
        Capacity = capacity;
    }

    public int Capacity { get; }

    /// <summary>Whether this rank writes (asks for stacks) rather than serves.</summary>
    public bool IsWriter => group.Rank == 0;

    /// <summary>Gathers run so far (the writer's count; a stack asked for again after it was dropped counts twice).</summary>
    public int Gathers { get; private set; }

    /// <summary>The most gathered stacks the writer held at once.</summary>
    public int MostHeld { get; private set; }

    /// <summary>The full (E, ...) stack <paramref name="name"/> on the writer's host. Collective over the group (the other
    /// ranks are in Serve). The tensor belongs to the stream: valid until Capacity other stacks were asked for since,
    /// or Finish; copy what must live longer.</summary>
    public Tensor Get(string name)
    {
        if (!IsWriter) throw new InvalidOperationException("only the expert-parallel group's rank 0 asks for stacks; the others Serve");
        if (finished) throw new InvalidOperationException("the stream is finished");
        for (var node = held.First; node is not null; node = node.Next)
        {
            if (node.Value.Name != name) continue;
            held.Remove(node);
            held.AddFirst(node);
            return node.Value.Host;
        }
        int index = Array.BinarySearch(names, name, StringComparer.Ordinal);
        if (index < 0) throw new KeyNotFoundException($"no expert stack named {name}");
        Announce(index);
        var host = GatherToHost(index, keep: true)!;
        held.AddFirst((name, host));
        while (held.Count > Capacity)
        {
            held.Last!.Value.Host.Dispose();
            held.RemoveLast();
        }
        MostHeld = Math.Max(MostHeld, held.Count);
        return host;
    }

    /// <summary>The non-writers' side: joins every gather the writer asks for, until it calls Finish.</summary>
    public void Serve()
    {
        if (IsWriter) throw new InvalidOperationException("the writer asks for stacks (Get) and ends with Finish; it does not Serve");
        while (true)
        {
            long index = Receive();
            if (index == Done) return;
            if (index < 0 || index >= names.Length)
                throw new InvalidOperationException($"the writer asked for expert stack {index} of {names.Length}");
            GatherToHost((int)index, keep: false);
        }
    }

    /// <summary>The writer's last word: the serving ranks return from Serve; the held stacks are freed. Idempotent.</summary>
    public void Finish()
    {
        if (!IsWriter || finished) return;
        finished = true;
        Announce(Done);
        Release();
    }

    public void Dispose()
    {
        Finish();
        Release();
    }

    private void Release()
    {
        foreach (var (_, host) in held) host.Dispose();
        held.Clear();
    }

    private void Announce(long index)
    {
        using var t = tensor(new[] { index });
        group.Broadcast(t, 0);
    }

    private long Receive()
    {
        using var t = tensor(new[] { 0L });
        group.Broadcast(t, 0);
        return t.item<long>();
    }

    // Every rank's rows of stack `index`, concatenated; kept on the host where `keep`, freed at once otherwise.
    private Tensor? GatherToHost(int index, bool keep)
    {
        Gathers += keep ? 1 : 0;
        using var scope = NewDisposeScope();
        var gathered = ExpertParallelCheckpoint.Gather(group, local[names[index]]);
        if (!keep) return null;
        return (gathered.device_type == TorchSharp.DeviceType.CPU ? gathered : gathered.cpu()).DetachFromDisposeScope();
    }
}
