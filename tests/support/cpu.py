"""Make this machine compute as another CPU would, so that a test can show an artifact does not
depend on the CPU that made it: ``dvc repro`` on a colleague's or CI's machine must reproduce
the committed lock bit for bit.

Two things choose code by CPU at run time: OpenBLAS picks a kernel (its dot products round
differently on AVX-512 and AVX2), and NumPy dispatches some loops to AVX-512. The environment
below asks OpenBLAS for the Sandybridge kernel (AVX, no FMA: unlike Haswell, Zen or SkylakeX)
and switches NumPy's AVX-512 loops off where this CPU has them.
"""

from __future__ import annotations

from numpy._core import _multiarray_umath as umath

KERNEL = "Sandybridge"


def another_cpu() -> dict[str, str]:
    """Environment variables under which this machine's floating point is another CPU's."""
    avx512 = [
        name
        for name in umath.__cpu_dispatch__
        if name.startswith(("X86_V4", "AVX512")) and umath.__cpu_features__.get(name)
    ]
    env = {"OPENBLAS_CORETYPE": KERNEL}
    if avx512:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(avx512)
    return env
