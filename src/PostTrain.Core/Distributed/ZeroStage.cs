// ZeRO stages of data-parallel training (Rajbhandari et al.): 0 = every rank keeps the whole optimizer state;
// 1 = optimizer state sharded (each rank updates the parameters it owns, then the ranks all-gather them);
// 2 = gradients also reduce-scattered (each rank receives only its own parameters' summed gradients).
namespace PostTrain.Core.Distributed;

public enum ZeroStage { None = 0, One = 1, Two = 2 }
