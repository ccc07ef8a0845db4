// LoRA (Hu et al.): a frozen linear layer W plus a trainable low-rank update, y = x W^T + (alpha / r) * B A dropout(x),
// with A (r, in) drawn like PEFT's default (Kaiming-uniform, a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))) from a seed and
// B (out, r) zero, so a new adapter changes nothing. Dropout (LoraDropout) on A's input only while training. Names lora_A / lora_B
// as PEFT saves them (<module>.lora_A.weight, <module>.lora_B.weight).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class LoraAdapter : nn.Module<Tensor, Tensor>
{
    private readonly Parameter lora_A;   // (r, in)
    private readonly Parameter lora_B;   // (out, r)
    private readonly double dropout;

    public int Rank { get; }
    public double Scale { get; }

    public LoraAdapter(int inFeatures, int outFeatures, int rank, double alpha, double dropout, Generator gen, Device? device = null)
        : base(nameof(LoraAdapter))
    {
        Rank = rank;
        Scale = alpha / rank;
        this.dropout = dropout;
        double bound = 1.0 / Math.Sqrt(inFeatures);
        lora_A = nn.Parameter((rand([rank, inFeatures], generator: gen) * (2 * bound) - bound).to(device ?? CPU));
        lora_B = nn.Parameter(zeros(outFeatures, rank, device: device));
        RegisterComponents();
    }

    public Parameter A => lora_A;
    public Parameter B => lora_B;

    /// <summary>x (..., in) -> (alpha / r) * dropout(x) A^T B^T (..., out), in fp32 (the adapter is small).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.to(ScalarType.Float32);
        if (training) h = LoraDropout.Apply(h, dropout);
        return (nn.functional.linear(nn.functional.linear(h, lora_A), lora_B) * Scale).MoveToOuterDisposeScope();
    }

    /// <summary>The update folded into a weight: (alpha / r) * B A, (out, in).</summary>
    public Tensor Delta() => matmul(lora_B, lora_A) * Scale;
}
