"""Build crucible-telemetry's optional C extension; everything else is in pyproject.toml.

`crucible_telemetry._speedups` enriches captured events in one pass in C (see
`src/crucible_telemetry/_columnar.py`). It is optional: without a C compiler or Python's headers
the build warns and goes on, and the package uses the pure-Python enrichment, which gives the same
values (tests/test_speedups.py checks one against the other).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "crucible_telemetry._speedups",
            ["src/crucible_telemetry/_speedups.c"],
            optional=True,
            extra_compile_args=[
                "-O2",
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
            ],
        )
    ]
)
