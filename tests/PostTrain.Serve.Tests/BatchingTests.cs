// Concurrent requests share engine calls (the scheduler's counters say so) and get the same greedy results as the
// engine run one request at a time.
using OpenAI.Chat;

namespace PostTrain.Serve.Tests;

public sealed class BatchingTests(BatchingFixture f) : IClassFixture<BatchingFixture>
{
    [Fact]
    public async Task SixConcurrentRequestsAreBatchedAndEqualOneAtATime()
    {
        string[] users = ["Hi", "What is 7 * 6?", "Write a haiku about snow.", "2+2=", "Name three fruits please.", "Why?"];
        int[] maxTokens = [5, 9, 12, 3, 8, 10];
        var chat = f.Chat();
        var tasks = users.Select((u, i) => chat.CompleteChatAsync([new UserChatMessage(u)],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = maxTokens[i], IncludeLogProbabilities = true })).ToArray();
        // A seeded sampled request at the same time runs in its own engine call and gives what it gives alone.
        var seeded = chat.CompleteChatAsync([new UserChatMessage("Surprise me.")],
            new ChatCompletionOptions { Temperature = 1, MaxOutputTokenCount = 6, Seed = 77 });
        var results = await Task.WhenAll(tasks);
        var seededExpected = f.Engine.Expected(f.Engine.Generate(f.Engine.ChatPrompt("Surprise me."), 6, temperature: 1, seed: 77)[0]).Text;
        Assert.Equal(seededExpected, (await seeded).Value.Content[0].Text);

        Assert.True(f.Server.Stats.LargestBatchRequests > 1, $"largest batch {f.Server.Stats.LargestBatchRequests}: requests were not batched");
        Assert.True(f.Server.Stats.Batches < users.Length, $"{f.Server.Stats.Batches} engine calls for {users.Length + 1} requests");
        for (int i = 0; i < users.Length; i++)
        {
            var r = f.Engine.Generate(f.Engine.ChatPrompt(users[i]), maxTokens[i])[0];
            var (text, logProbs) = f.Engine.Expected(r);
            var c = results[i].Value;
            Assert.Equal(text, c.Content[0].Text);
            Assert.Equal(r.Length, c.Usage.OutputTokenCount);
            Assert.Equal(logProbs.Length, c.ContentTokenLogProbabilities.Count);
            for (int t = 0; t < logProbs.Length; t++) Assert.Equal(logProbs[t], c.ContentTokenLogProbabilities[t].LogProbability, 1e-5);
        }

        // The per-batch metrics agree with the counters and with the requests' usage.
        var lines = File.ReadAllLines(Path.Combine(f.Dir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(f.Server.Stats.Batches, lines.Count);
        Assert.Equal(f.Server.Stats.LargestBatchRequests, lines.Max(l => l.GetProperty("batch/requests").GetInt32()));
        var all = results.Append(await seeded).Select(r => r.Value.Usage).ToList();
        Assert.Equal(all.Sum(u => u.OutputTokenCount), lines.Sum(l => l.GetProperty("batch/generated_tokens").GetInt64()));
        Assert.Equal(all.Sum(u => u.InputTokenCount), lines.Sum(l => l.GetProperty("batch/prompt_tokens").GetInt64()));
        Assert.Equal(f.Server.Stats.GeneratedTokens, lines.Sum(l => l.GetProperty("batch/generated_tokens").GetInt64()));
    }
}
