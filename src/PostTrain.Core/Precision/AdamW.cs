// AdamW (decoupled weight decay, Loshchilov & Hutter) over FP32 master parameters, with optional BF16
// moments as in DeepSeek-V3. Same update order as torch.optim.AdamW:
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// BF16 moments: m and v are stored in bf16 (round to nearest even); each step reads them to FP32, updates,
// uses the FP32 values for the parameter update and stores them rounded back.
// The step count is per parameter (a parameter without a gradient is skipped, as in torch).
// State for checkpoints: "{name}.exp_avg", "{name}.exp_avg_sq", "{name}.step" (int64 scalar).
// Fused (fused: true): the same update as one torch._fused_adamw_ kernel per group of parameters (grouped by dtype,
// device and weight decay; moments in the parameters' dtype, so Bf16Moments needs bf16 parameters), with the
// learning rate and the step counts in device tensors: no host value enters the kernels, so the step can be captured
// in a CUDA graph (the training fast path). Equal to the plain update to fp32 rounding (a test compares them).
// Stochastic rounding (stochasticRounding: true): bf16 parameters without fp32 masters, as torchao's bf16 AdamW does:
// each step reads the parameter to fp32, applies decay and update there and writes it back rounded stochastically
// (StochasticRounding.ToBf16: up with probability equal to the distance from the lower neighbour), so an update
// below bf16's resolution moves the weight in expectation instead of being lost to round-to-nearest. It keeps a
// full fine-tune of a 16B model on one GPU: 2 bytes of parameter, 2 of gradient and 4 of bf16 moments per weight.
// Large parameters are updated in chunks of ChunkElements so the fp32 temporaries stay small.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class AdamW : IOptimizer
{
    private readonly (string Name, Parameter Param)[] parameters;
    private readonly Tensor[] expAvg;
    private readonly Tensor[] expAvgSq;
    private readonly long[] steps;
    private readonly HashSet<string> noDecay;
    private readonly double beta1, beta2, eps, weightDecay;

    /// <summary>Learning rate; set it every step for schedules.</summary>
    public double LearningRate { get; set; }

    public bool Bf16Moments { get; }

    /// <summary>bf16 parameters updated in fp32 and written back with stochastic rounding (see the header).</summary>
    public bool StochasticRounding { get; }

    /// <summary>Elements per chunk of the stochastic-rounding update (bounds its fp32 temporaries).</summary>
    internal long ChunkElements { get; init; } = 1L << 26;

    /// <summary>One fused kernel per parameter group (see the header).</summary>
    public bool Fused { get; }

    private readonly Tensor[]? stepTensors;   // fused: float32 scalar step per parameter, on its device
    private readonly Dictionary<(DeviceType, int), Tensor>? lrTensors;   // fused: the learning rate per device
    public IReadOnlyList<Parameter> Parameters => parameters.Select(p => p.Param).ToArray();

    /// <param name="parameters">Named FP32 parameters (e.g. module.named_parameters()); names key the state.</param>
    /// <param name="noDecay">Names excluded from weight decay (norms, biases), or null.</param>
    public AdamW(IEnumerable<(string Name, Parameter Param)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.01, bool bf16Moments = false, IEnumerable<string>? noDecay = null, bool fused = false,
        bool stochasticRounding = false)
    {
        this.parameters = parameters.ToArray();
        var duplicate = this.parameters.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"AdamW parameter name '{duplicate.Key}' appears more than once.", nameof(parameters));
        if (lr < 0 || beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1 || eps <= 0 || weightDecay < 0)
            throw new ArgumentOutOfRangeException(nameof(lr), $"AdamW hyper-parameters out of range: lr {lr}, betas ({beta1}, {beta2}), eps {eps}, weight decay {weightDecay}.");
        LearningRate = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        Bf16Moments = bf16Moments;
        this.noDecay = noDecay is null ? [] : [.. noDecay];
        var momentType = bf16Moments ? ScalarType.BFloat16 : ScalarType.Float32;
        Fused = fused;
        StochasticRounding = stochasticRounding;
        if (stochasticRounding)
        {
            if (fused)
                throw new ArgumentException("Stochastic rounding runs the plain per-parameter update (fused: false).", nameof(fused));
            var notBf16 = this.parameters.FirstOrDefault(p => p.Param.dtype != ScalarType.BFloat16);
            if (notBf16.Param is not null)
                throw new ArgumentException($"Stochastic rounding is for bf16 parameters: '{notBf16.Name}' is {notBf16.Param.dtype}.", nameof(stochasticRounding));
        }
        if (fused)
        {
            var mismatch = this.parameters.FirstOrDefault(p => bf16Moments && p.Param.dtype != ScalarType.BFloat16);
            if (mismatch.Param is not null)
                throw new ArgumentException($"Fused AdamW keeps the moments in the parameters' dtype: '{mismatch.Name}' is {mismatch.Param.dtype}, " +
                    "bf16 moments were asked (use bf16 parameters for bf16 moments, or fused: false).", nameof(bf16Moments));
            stepTensors = this.parameters.Select(p => zeros(1, dtype: ScalarType.Float32, device: p.Param.device).squeeze().DetachFromDisposeScope()).ToArray();
            lrTensors = [];
        }
        expAvg = this.parameters.Select(p => (fused ? zeros_like(p.Param) : zeros_like(p.Param, dtype: momentType)).DetachFromDisposeScope()).ToArray();
        expAvgSq = this.parameters.Select(p => (fused ? zeros_like(p.Param) : zeros_like(p.Param, dtype: momentType)).DetachFromDisposeScope()).ToArray();
        steps = new long[this.parameters.Length];
    }

    /// <summary>Unnamed parameters are keyed "0", "1", ... in the state.</summary>
    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.01, bool bf16Moments = false)
        : this(parameters.Select((p, i) => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), p)), lr, beta1, beta2, eps, weightDecay, bf16Moments)
    {
    }

    public void Step()
    {
        if (Fused)
        {
            UploadLearningRate();
            FusedStepKernels();
            return;
        }
        for (int i = 0; i < parameters.Length; i++)
        {
            if (StochasticRounding) StepParamRounded(i);
            else StepParam(i);
        }
    }

    /// <summary>The stochastic-rounding update of bf16 parameter i (see the header), chunk by chunk over its elements.</summary>
    private void StepParamRounded(int i)
    {
        using var noGrad = no_grad();
        if (Begin(i) is not var (p, g, t, wd))
            return;
        double bias1 = 1 - Math.Pow(beta1, t), bias2 = 1 - Math.Pow(beta2, t);
        using var pFlat = p.detach().view(-1);
        using var gFlat = g.contiguous().view(-1);
        using var mFlat = expAvg[i].view(-1);
        using var vFlat = expAvgSq[i].view(-1);
        long n = pFlat.numel();
        for (long start = 0; start < n; start += ChunkElements)
        {
            using var scope = NewDisposeScope();
            long len = Math.Min(ChunkElements, n - start);
            var w = pFlat.narrow(0, start, len).to(ScalarType.Float32);
            var gc = gFlat.narrow(0, start, len).to(ScalarType.Float32);
            var mc = mFlat.narrow(0, start, len);
            var vc = vFlat.narrow(0, start, len);
            var m = mc.to(ScalarType.Float32, copy: true);
            var v = vc.to(ScalarType.Float32, copy: true);
            if (wd != 0)
                w.mul_(1 - LearningRate * wd);
            m.mul_(beta1).add_(gc, alpha: 1 - beta1);
            v.mul_(beta2).addcmul_(gc, gc, value: 1 - beta2);
            mc.copy_(m);
            vc.copy_(v);
            var denom = (v.sqrt_() / Math.Sqrt(bias2)).add_(eps);
            w.addcdiv_(m, denom, value: -LearningRate / bias1);
            pFlat.narrow(0, start, len).copy_(PostTrain.Core.Precision.StochasticRounding.ToBf16(w));
        }
    }

    /// <summary>Parameter i, its gradient, its step count after this step and its weight decay; null (and no step counted)
    /// when it has no gradient.</summary>
    private (Parameter P, Tensor G, long T, double Wd)? Begin(int i)
    {
        var p = parameters[i].Param;
        if (p.grad is not { } g)
            return null;
        return (p, g, ++steps[i], noDecay.Contains(parameters[i].Name) ? 0 : weightDecay);
    }

    /// <summary>The plain (unfused) update of parameter i alone; nothing when it has no gradient.</summary>
    internal void StepParam(int i)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (Begin(i) is not var (p, g, t, wd))
            return;
        if (wd != 0)
            p.mul_(1 - LearningRate * wd);

        var m = Bf16Moments ? expAvg[i].to(ScalarType.Float32) : expAvg[i];
        var v = Bf16Moments ? expAvgSq[i].to(ScalarType.Float32) : expAvgSq[i];
        m.mul_(beta1).add_(g, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        if (Bf16Moments)
        {
            expAvg[i].copy_(m);
            expAvgSq[i].copy_(v);
        }

        double bias1 = 1 - Math.Pow(beta1, t), bias2 = 1 - Math.Pow(beta2, t);
        var denom = (v.sqrt() / Math.Sqrt(bias2)).add_(eps);
        p.addcdiv_(m, denom, value: -LearningRate / bias1);
    }

    public void ZeroGrad()
    {
        if (Fused)
        {
            OptimizerScripts.ZeroAll(parameters.Select(p => p.Param.grad).Where(g => g is not null).ToArray()!);
            return;
        }
        foreach (var (_, p) in parameters)
            p.grad?.zero_();
    }

    /// <summary>Fused: writes <see cref="LearningRate"/> into the device tensors the kernels read (outside a captured
    /// step, before its replay).</summary>
    internal void UploadLearningRate()
    {
        if (lrTensors is null) return;
        using var noGrad = no_grad();
        foreach (var p in parameters)
        {
            var key = (p.Param.device_type, p.Param.device_index);
            if (!lrTensors.TryGetValue(key, out var lr))
                lrTensors[key] = lr = zeros(1, dtype: ScalarType.Float32, device: p.Param.device).squeeze().DetachFromDisposeScope();
        }
        foreach (var lr in lrTensors.Values)
            lr.fill_(LearningRate);
    }

    /// <summary>Fused: the device work of one step (steps += 1 and the update, per group of parameters with a
    /// gradient), reading the learning rate from the device. Capturable. foundInf (float32 scalar, 1 = skip): the
    /// update and the step count are left unchanged on the device (a non-finite loss guard without a host read).</summary>
    internal void FusedStepKernels(Tensor? foundInf = null)
    {
        if (stepTensors is null || lrTensors is null)
            throw new InvalidOperationException("FusedStepKernels needs an AdamW built with fused: true.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var groups = Enumerable.Range(0, parameters.Length)
            .Where(i => parameters[i].Param.grad is not null)
            .GroupBy(i => (parameters[i].Param.dtype, parameters[i].Param.device_type, parameters[i].Param.device_index,
                Decay: noDecay.Contains(parameters[i].Name) ? 0.0 : weightDecay));
        foreach (var g in groups)
        {
            var idx = g.ToArray();
            foreach (var i in idx) steps[i]++;
            var lr = lrTensors[(g.Key.device_type, g.Key.device_index)];
            var ps = idx.Select(i => (Tensor)parameters[i].Param).ToArray();
            var gs = idx.Select(i => parameters[i].Param.grad!).ToArray();
            var ms = idx.Select(i => expAvg[i]).ToArray();
            var vs = idx.Select(i => expAvgSq[i]).ToArray();
            var ss = idx.Select(i => stepTensors[i]).ToArray();
            if (foundInf is null) OptimizerScripts.FusedAdamW(ps, gs, ms, vs, ss, lr, beta1, beta2, g.Key.Decay, eps);
            else OptimizerScripts.FusedAdamWGuarded(ps, gs, ms, vs, ss, lr, beta1, beta2, g.Key.Decay, eps, foundInf.to(ps[0].device));
        }
    }

    /// <summary>Copies of the optimizer state (on the parameters' devices) for a checkpoint.</summary>
    public Dictionary<string, Tensor> StateDict() => StateDict(copy: true);

    public Dictionary<string, Tensor> StateAliases() => StateDict(copy: false);

    /// <summary>copy false: aliases of the state tensors (no memory; valid until the next step), for state too large to copy.</summary>
    internal Dictionary<string, Tensor> StateDict(bool copy)
    {
        var state = new Dictionary<string, Tensor>();
        for (int i = 0; i < parameters.Length; i++)
        {
            string n = parameters[i].Name;
            state[n + ".exp_avg"] = (copy ? expAvg[i].clone() : expAvg[i].alias()).DetachFromDisposeScope();
            state[n + ".exp_avg_sq"] = (copy ? expAvgSq[i].clone() : expAvgSq[i].alias()).DetachFromDisposeScope();
            long t = stepTensors is null ? steps[i] : (long)stepTensors[i].item<float>();   // fused: replays count on the device
            state[n + ".step"] = tensor(t).DetachFromDisposeScope();
        }
        return state;
    }

    /// <summary>Restores state saved by StateDict; every key must be present with the parameter's shape.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (int i = 0; i < parameters.Length; i++)
        {
            string n = parameters[i].Name;
            Load(state, n + ".exp_avg", parameters[i].Param).Invoke(expAvg[i]);
            Load(state, n + ".exp_avg_sq", parameters[i].Param).Invoke(expAvgSq[i]);
            if (!state.TryGetValue(n + ".step", out var s) || s.numel() != 1)
                throw new ArgumentException($"AdamW state is missing the scalar '{n}.step'.", nameof(state));
            steps[i] = s.to(ScalarType.Int64).item<long>();
            stepTensors?[i].fill_(steps[i]);
        }
    }

    private static Action<Tensor> Load(IReadOnlyDictionary<string, Tensor> state, string key, Tensor param)
    {
        if (!state.TryGetValue(key, out var t))
            throw new ArgumentException($"AdamW state is missing '{key}'.", nameof(state));
        if (!t.shape.SequenceEqual(param.shape))
            throw new ArgumentException($"AdamW state '{key}' has shape [{string.Join(", ", t.shape)}], the parameter has [{string.Join(", ", param.shape)}].", nameof(state));
        return target => target.copy_(t);
    }

    public void Dispose()
    {
        foreach (var t in expAvg.Concat(expAvgSq).Concat(stepTensors ?? []).Concat(lrTensors?.Values.AsEnumerable() ?? []))
            t.Dispose();
    }
}
