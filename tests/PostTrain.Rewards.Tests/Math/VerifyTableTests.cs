// Runs every (gold, prediction, expected) case of VerifyCases through MathVerifier.Verify.
using PostTrain.Rewards.Math;

namespace PostTrain.Rewards.Tests.Math;

public sealed class VerifyTableTests
{
    [Theory]
    [MemberData(nameof(VerifyCases.All), MemberType = typeof(VerifyCases))]
    public void Verify_matches_expected_verdict(string gold, string prediction, bool expected)
    {
        var verdict = MathVerifier.Verify(gold, prediction);
        Assert.True(verdict.Correct == expected,
            $"gold '{gold}' vs '{prediction}': expected {expected}, got {verdict.Correct} ({verdict.Reason})");
    }
}
