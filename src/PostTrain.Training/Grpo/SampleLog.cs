// Every N steps, a few groups of completions with their rewards and advantages go to <run>/samples/step-NNNNNN.jsonl
// (one JSON object per completion), written atomically, so a resumed run simply overwrites the files of its steps.
using System.Text.Json;
using PostTrain.Training.Infra;

namespace PostTrain.Training.Grpo;

public static class SampleLog
{
    public const string Folder = "samples";

    public static string Write(string runDir, long step, IReadOnlyList<GroupView> groups, IReadOnlyList<double> advantages,
        IReadOnlyList<string> rewardNames, int maxGroups)
    {
        var sb = new System.Text.StringBuilder();
        int i = 0;
        foreach (var (g, gi) in groups.Select((g, gi) => (g, gi)))
        {
            foreach (var c in g.Completions)
            {
                if (gi < maxGroups)
                {
                    var scores = rewardNames.Select((name, k) => (name, c.Calls[k].Score)).ToDictionary(x => x.name, x => x.Item2);
                    sb.Append(JsonSerializer.Serialize(new
                    {
                        step, group = gi, prompt = g.Prompt, completion = c.Text, reward = c.Reward, rewards = scores,
                        advantage = advantages[i], finish_reason = c.FinishReason, tokens = c.Tokens,
                    })).Append('\n');
                }
                i++;
            }
        }
        var path = Path.Combine(runDir, Folder, $"step-{step:D6}.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, sb.ToString());
        return path;
    }
}
