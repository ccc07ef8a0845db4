// OpenAI's error shape: {"error": {"message", "type", "param", "code"}} with an HTTP status. Thrown while a request
// is checked and turned into that JSON by the endpoint.
using System.Text.Json;

namespace PostTrain.Serve;

public sealed class ApiException(int status, string message, string? param = null, string? code = null,
    string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);

    public string ToJson() => ErrorJson(Message, Type, Param, Code);

    public static string ErrorJson(string message, string type, string? param, string? code) =>
        JsonSerializer.Serialize(new { error = new { message, type, param, code } });
}
