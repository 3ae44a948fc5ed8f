"""tongban's benchmark against a bare grpc.aio relay: ``python -m bench [--quick]``.

See ``bench/README.md`` for what is measured and how the variants are paired.
"""

__all__: list[str] = []
