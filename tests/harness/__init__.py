"""The harnesses' shared code: lambda_host (see its docstring)."""
