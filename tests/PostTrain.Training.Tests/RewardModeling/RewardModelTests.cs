// The reward model (Core/Model/RewardModel): the reward is the score head applied to the final normed hidden state
// of each sequence's last real token, so a batch scores every sequence as it scores alone (right padding, left
// padding, packed segments) to 1e-5; saved as a sequence-classification directory it loads back with identical
// scores; it starts from a causal-LM checkpoint's backbone; a directory without the head is an error naming it.
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.RewardModeling;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class RewardModelTests
{
    static readonly int[][] Seqs = [[5, 17, 99, 3, 42], [8, 8, 120, 7, 66, 1, 9, 250, 31], [77, 2, 13, 201, 45, 6, 90]];

    static RewardModel Micro(long seed = 3)
    {
        var rm = RewardModelFiles.Random(BuiltinModels.Micro(), seed, std: 0.1);
        rm.InitScore(0.5, seed);   // a head large enough that scores differ clearly
        rm.eval();
        return rm;
    }

    static float Alone(RewardModel rm, int[] ids)
    {
        using var _ = no_grad();
        return rm.Forward(tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length])).item<float>();
    }

    static (Tensor Ids, Tensor Mask) Padded(int[][] seqs, bool left, long padId)
    {
        int len = seqs.Max(s => s.Length);
        var ids = new long[seqs.Length * len];
        var mask = new long[seqs.Length * len];
        for (int i = 0; i < seqs.Length; i++)
        {
            int off = left ? len - seqs[i].Length : 0;
            for (int t = 0; t < len; t++) { ids[i * len + t] = padId; }
            for (int t = 0; t < seqs[i].Length; t++) { ids[i * len + off + t] = seqs[i][t]; mask[i * len + off + t] = 1; }
        }
        return (tensor(ids, [seqs.Length, len]), tensor(mask, [seqs.Length, len]));
    }

    [Fact]
    public void TheRewardIsTheHeadOnTheLastTokensNormedHiddenState()
    {
        using var rm = Micro();
        using var _ = no_grad();
        var ids = tensor(Seqs[1].Select(x => (long)x).ToArray(), [1, Seqs[1].Length]);
        var hidden = rm.Backbone.NormedHidden(ids);                                   // (1, T, H)
        double expected = (hidden[0, -1].to(ScalarType.Float32) * rm.ScoreWeight[0]).sum().item<float>();
        Assert.Equal(expected, rm.Forward(ids).item<float>(), 1e-5);
        // the backbone has no vocabulary head or MTP modules to run
        Assert.DoesNotContain(rm.named_parameters(), p => p.name.Contains("lm_head") || p.name.Contains("mtp"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ABatchWithRightOrLeftPaddingScoresEachSequenceAsAlone(bool left)
    {
        using var rm = Micro();
        var alone = Seqs.Select(s => Alone(rm, s)).ToArray();
        Assert.True(Math.Abs(alone[0] - alone[1]) > 1e-3 && Math.Abs(alone[1] - alone[2]) > 1e-3, string.Join(", ", alone));
        foreach (long pad in new long[] { 0, 200 })   // what the padding holds does not matter
        {
            var (ids, mask) = Padded(Seqs, left, pad);
            using var _ = no_grad();
            var batched = rm.Forward(ids, new AttentionMask(KeyPadding: mask)).data<float>().ToArray();
            for (int i = 0; i < Seqs.Length; i++) Assert.Equal(alone[i], batched[i], 1e-5);
        }
    }

    [Fact]
    public void PackedSegmentsGetOneRewardEachAsAlone()
    {
        using var rm = Micro();
        var alone = Seqs.Select(s => Alone(rm, s)).ToArray();
        // row 0: segments 0 and 1 then 2 pad tokens; row 1: segment 0 (seq 2) then padding
        int len = Seqs[0].Length + Seqs[1].Length + 2;
        var ids = new long[2 * len]; var pos = new long[2 * len]; var seg = Enumerable.Repeat(-1L, 2 * len).ToArray();
        int at = 0;
        foreach (var (s, k) in new[] { (Seqs[0], 0), (Seqs[1], 1) })
            for (int t = 0; t < s.Length; t++, at++) { ids[at] = s[t]; pos[at] = t; seg[at] = k; }
        for (int t = 0; t < Seqs[2].Length; t++) { ids[len + t] = Seqs[2][t]; pos[len + t] = t; seg[len + t] = 0; }
        var segT = tensor(seg, [2, len]);
        var idx = RewardModel.LastTokenIndices(new AttentionMask(SegmentIds: segT), 2, len, CPU).data<long>().ToArray();
        Assert.Equal(new long[] { 4, 13, len + 6 }, idx);
        using var _ = no_grad();
        var r = rm.Forward(tensor(ids, [2, len]), new AttentionMask(SegmentIds: segT), tensor(pos, [2, len])).data<float>().ToArray();
        Assert.Equal(3, r.Length);
        for (int i = 0; i < 3; i++) Assert.Equal(alone[i], r[i], 1e-5);
    }

    [Fact]
    public void SaveThenLoadGivesIdenticalScoresAndTransformersNames()
    {
        using var tmp = new TempDir();
        using var rm = Micro();
        var (ids, mask) = Padded(Seqs, left: false, 0);
        float[] before, after;
        using (no_grad()) before = rm.Forward(ids, new AttentionMask(KeyPadding: mask)).data<float>().ToArray();
        RewardModelFiles.Save(rm, tmp["rm"], padTokenId: 0);

        var names = SafeTensors.ReadHeader(tmp["rm/model.safetensors"]).Keys.ToList();
        Assert.Contains("score.weight", names);
        Assert.Contains("model.embed_tokens.weight", names);
        Assert.Contains("model.layers.1.mlp.experts.0.gate_proj.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("lm_head", StringComparison.Ordinal) || n.StartsWith("model.layers.2.", StringComparison.Ordinal));
        var config = JsonNode.Parse(File.ReadAllText(tmp["rm/config.json"]))!;
        Assert.Equal("DeepseekV3ForSequenceClassification", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(1, config["num_labels"]!.GetValue<int>());
        Assert.Equal(0, config["pad_token_id"]!.GetValue<int>());
        Assert.True(RewardModelFiles.IsRewardModelDir(tmp["rm"]));

        using var loaded = RewardModelFiles.Load(tmp["rm"]);
        loaded.eval();
        using (no_grad()) after = loaded.Forward(ids, new AttentionMask(KeyPadding: mask)).data<float>().ToArray();
        Assert.Equal(before, after);   // bit-identical
    }

    [Fact]
    public void StartsFromACausalLmCheckpointWithASmallSeededHead()
    {
        using var tmp = new TempDir();
        using var lm = new DeepSeekForCausalLM(BuiltinModels.Micro());
        lm.InitWeights(0.1, 11);
        PretrainedModel.Save(lm, tmp["lm"]);
        Assert.False(RewardModelFiles.IsRewardModelDir(tmp["lm"]));
        using var a = RewardModelFiles.FromCausalLm(tmp["lm"], seed: 1, headStd: 0.02);
        using var b = RewardModelFiles.FromCausalLm(tmp["lm"], seed: 1, headStd: 0.02);
        using var c = RewardModelFiles.FromCausalLm(tmp["lm"], seed: 2, headStd: 0.02);
        using var _ = no_grad();
        var ids = tensor(Seqs[1].Select(x => (long)x).ToArray(), [1, Seqs[1].Length]);
        lm.eval(); a.eval();
        Assert.Equal(0.0, (lm.Forward(ids, returnHiddenStates: true).HiddenStates![^1] - a.Backbone.NormedHidden(ids)).abs().max().item<float>());
        Assert.True(a.ScoreWeight.eq(b.ScoreWeight).all().item<bool>());
        Assert.False(a.ScoreWeight.eq(c.ScoreWeight).all().item<bool>());
        double std = a.ScoreWeight.std().item<float>();
        Assert.InRange(std, 0.01, 0.03);
    }

    [Fact]
    public void ADirectoryWithoutTheScoreWeightIsAnErrorNamingIt()
    {
        using var tmp = new TempDir();
        using var lm = new DeepSeekForCausalLM(BuiltinModels.Micro());
        lm.InitWeights(0.1, 11);
        PretrainedModel.Save(lm, tmp["lm"]);
        var e = Assert.Throws<CheckpointMismatchException>(() => RewardModelFiles.Load(tmp["lm"]));
        Assert.Contains("score.weight", e.Message);
        Assert.Contains(tmp["lm"], e.Message);
        Assert.Equal(["score.weight"], e.Missing);
    }
}
