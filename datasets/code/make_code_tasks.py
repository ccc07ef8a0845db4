#!/usr/bin/env python3
# Writes test.jsonl: small JavaScript and C# function tasks with tests in the `tests` column format of
# src/PostTrain.Rewards/Sandbox/README.md and a reference `solution` (checked by tests/PostTrain.Eval.Tests).
# Run from this folder: python3 make_code_tasks.py
import json

JS = "javascript"
CS = "csharp"

def fence(lang, code):
    return f"```{'js' if lang == JS else 'csharp'}\n{code}\n```"

def task(lang, entry, desc, cases, solution):
    name = "JavaScript" if lang == JS else "C#"
    sig = entry if lang == JS else entry[0].upper() + entry[1:]
    prompt = (f"Write a {name} function `{sig}` that {desc} "
              f"Answer with the function in a ```{'js' if lang == JS else 'csharp'} code block.")
    tests = {"language": lang, "entry": entry, "cases": [{"args": a, "expected": e} for a, e in cases]}
    return {"prompt": prompt, "tests": json.dumps(tests, separators=(",", ":")), "language": lang,
            "category": lang, "solution": fence(lang, solution)}

rows = [
    task(JS, "add", "returns the sum of two integers a and b.",
         [([1, 2], 3), ([-4, 4], 0), ([100, 23], 123)],
         "function add(a, b) { return a + b; }"),
    task(JS, "isEven", "returns true when the integer n is even.",
         [([2], True), ([7], False), ([0], True), ([-3], False)],
         "function isEven(n) { return n % 2 === 0; }"),
    task(JS, "reverse", "returns the string s reversed.",
         [(["abc"], "cba"), ([""], ""), (["racecar"], "racecar")],
         "function reverse(s) { return s.split('').reverse().join(''); }"),
    task(JS, "maxOf", "returns the largest number in a non-empty array xs.",
         [([[3, 9, 2]], 9), ([[-5, -1, -7]], -1), ([[4]], 4)],
         "function maxOf(xs) { return Math.max(...xs); }"),
    task(JS, "countVowels", "returns how many of the characters of s are vowels (a, e, i, o, u; lower case).",
         [(["hello"], 2), (["sky"], 0), (["aeiou"], 5)],
         "function countVowels(s) { return [...s].filter(c => 'aeiou'.includes(c)).length; }"),
    task(JS, "factorial", "returns n! for 0 <= n <= 12.",
         [([0], 1), ([5], 120), ([10], 3628800)],
         "function factorial(n) { let r = 1; for (let i = 2; i <= n; i++) r *= i; return r; }"),
    task(JS, "fizzbuzz", "returns 'Fizz' if n is divisible by 3, 'Buzz' if by 5, 'FizzBuzz' if by both, else n as a string.",
         [([3], "Fizz"), ([10], "Buzz"), ([15], "FizzBuzz"), ([7], "7")],
         "function fizzbuzz(n) { return n % 15 === 0 ? 'FizzBuzz' : n % 3 === 0 ? 'Fizz' : n % 5 === 0 ? 'Buzz' : String(n); }"),
    task(JS, "sumArray", "returns the sum of the numbers in the array xs (0 for an empty array).",
         [([[1, 2, 3]], 6), ([[]], 0), ([[-1, 1, 10]], 10)],
         "function sumArray(xs) { return xs.reduce((a, b) => a + b, 0); }"),
    task(JS, "isPalindrome", "returns true when the string s reads the same forwards and backwards.",
         [(["level"], True), (["hello"], False), ([""], True)],
         "function isPalindrome(s) { return s === s.split('').reverse().join(''); }"),
    task(JS, "sortNumbers", "returns a new array with the numbers of xs in ascending order.",
         [([[3, 1, 2]], [1, 2, 3]), ([[10, -1, 5, 5]], [-1, 5, 5, 10]), ([[]], [])],
         "function sortNumbers(xs) { return [...xs].sort((a, b) => a - b); }"),
    task(CS, "add", "returns the sum of two ints a and b.",
         [([1, 2], 3), ([-4, 4], 0), ([100, 23], 123)],
         "static int Add(int a, int b) => a + b;"),
    task(CS, "square", "returns n * n for an int n.",
         [([3], 9), ([-4], 16), ([0], 0)],
         "static int Square(int n) => n * n;"),
    task(CS, "reverse", "returns the string s reversed.",
         [(["abc"], "cba"), ([""], ""), (["ab"], "ba")],
         "static string Reverse(string s) { var a = s.ToCharArray(); Array.Reverse(a); return new string(a); }"),
    task(CS, "maxOf", "returns the largest value of a non-empty int[] xs.",
         [([[3, 9, 2]], 9), ([[-5, -1, -7]], -1), ([[4]], 4)],
         "static int MaxOf(int[] xs) => xs.Max();"),
    task(CS, "countChar", "returns how many times the character c (a one-letter string) occurs in s.",
         [(["banana", "a"], 3), (["hello", "z"], 0), (["", "x"], 0)],
         "static int CountChar(string s, string c) => s.Count(ch => ch == c[0]);"),
    task(CS, "fibonacci", "returns the n-th Fibonacci number (Fibonacci(0) = 0, Fibonacci(1) = 1) for 0 <= n <= 40.",
         [([0], 0), ([1], 1), ([10], 55), ([20], 6765)],
         "static long Fibonacci(int n) { long a = 0, b = 1; for (int i = 0; i < n; i++) (a, b) = (b, a + b); return a; }"),
    task(CS, "isPrime", "returns true when the int n is a prime number.",
         [([2], True), ([9], False), ([13], True), ([1], False)],
         "static bool IsPrime(int n) { if (n < 2) return false; for (int d = 2; d * d <= n; d++) if (n % d == 0) return false; return true; }"),
    task(CS, "evens", "returns the even numbers of int[] xs, in order, as an int[].",
         [([[1, 2, 3, 4]], [2, 4]), ([[1, 3]], []), ([[0, -2]], [0, -2])],
         "static int[] Evens(int[] xs) => xs.Where(x => x % 2 == 0).ToArray();"),
    task(CS, "gcd", "returns the greatest common divisor of two positive ints a and b.",
         [([12, 18], 6), ([7, 5], 1), ([100, 75], 25)],
         "static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);"),
    task(CS, "joinWords", "returns the strings of words joined with single spaces.",
         [([["a", "b", "c"]], "a b c"), ([["hi"]], "hi"), ([[]], "")],
         "static string JoinWords(string[] words) => string.Join(\" \", words);"),
]

with open("test.jsonl", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"wrote {len(rows)} rows to test.jsonl")
