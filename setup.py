"""Build ``rnnkit.fast._fastrnn``, the C time loops, at install time (the rest is pyproject.toml).

``pip install .`` and ``pip install -e .`` both compile it. The loops
(``rnnkit/fast/_kernels.c`` for the plain cells, ``_variants.c`` for the LSTM
with projection or layer norm, the layer-normalised GRU and IndRNN, both with
``_common.h``) are compiled once per instruction set: a baseline
for the architecture, and on x86-64 AVX2+FMA and AVX-512 as well where the
compiler knows them; the module (``rnnkit/fast/_fastrnn.c``) links them all and
picks the best the CPU runs when it loads, so one build serves any machine of
its architecture. OpenMP is used where the compiler has it (``-fopenmp``).

The extension is optional: where it cannot be built (no C compiler, no Python
headers) the install still succeeds and rnnkit runs its NumPy cells, with a
warning when it first does (``rnnkit info`` says which runs).
"""

import os
import platform
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, LinkError

HERE = os.path.dirname(os.path.abspath(__file__))
FAST = os.path.join("rnnkit", "fast")
# compiled per instruction set: the plain cells, the variants, the min cells' scan
KERNELS = [os.path.join(FAST, n) for n in ("_kernels.c", "_variants.c")]
SCAN = os.path.join(FAST, "_minscan.c")
# the scan's loops over channels choose between values computed either way (the gates'
# two forms, g's two parts): GCC turns such a choice into a vector blend only when the
# arithmetic of both sides may run for every element, which -ftrapping-math (the default)
# forbids, and GCC 12 then leaves every gate loop scalar (a minGRU training step,
# Recurrent T=1000, B=32, H=64 float32, one thread: 46 ms of CPU instead of 15, the
# compiled GRU's 77). No result changes: nothing here traps, nothing is reordered.
SCAN_FLAGS = ["-fno-trapping-math"]
# the plain cells and the variants: the same, for the same reason (their gate loops
# were scalar too: an LSTM forward's gate loop ran vdivss/vfmadd213ss one element at a
# time, 22 % of a T=100, B=32, H=128 training step on one thread)
KERNEL_FLAGS = ["-fno-trapping-math"]
HEADERS = [os.path.join(FAST, n) for n in ("_fastrnn.h", "_common.h", "_tanh.h")]
# the int8 loops: compiled per instruction set too, never contracting a * b + c into an
# FMA (their results equal NumPy's float32 arithmetic bit for bit; see the file)
QUANT = os.path.join(FAST, "_quant.c")
QUANT_FLAGS = ["-ffp-contract=off", "-fno-trapping-math"]
BASE_FLAGS = ["-O3"]
# instruction sets beyond the baseline, by architecture: (name, flags); the
# module's loader checks the same features on the CPU (_fastrnn.c, rk_runs_*)
EXTRA_ISAS = {
    "x86_64": [("avx2", ["-mavx2", "-mfma"]),
               ("avx512", ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma",
                           "-mprefer-vector-width=512"])],
}
OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"
ISA_PROBE = "int main(void) { return 0; }\n"


class BuildExt(build_ext):
    """build_ext that compiles the kernels once per instruction set and finds OpenMP."""

    def _compiles(self, code: str, flags, link: bool = False) -> bool:
        """Whether this compiler builds ``code`` with ``flags`` (and links it with them)."""
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w", encoding="utf-8") as fh:
                fh.write(code)
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
                if link:
                    self.compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                                  extra_postargs=list(flags))
            except (CCompilerError, CompileError, LinkError, OSError):
                return False
        return True

    def build_extension(self, ext):
        if ext.name != "rnnkit.fast._fastrnn":
            return super().build_extension(ext)
        openmp = ["-fopenmp"] if self._compiles(OPENMP_PROBE, ["-fopenmp"], link=True) else []
        flags = BASE_FLAGS + openmp
        machine = platform.machine().lower()
        machine = "x86_64" if machine in ("amd64", "x86_64") else machine
        objects, macros = [], []
        for isa, isa_flags in [("baseline", [])] + EXTRA_ISAS.get(machine, []):
            if isa_flags and not self._compiles(ISA_PROBE, isa_flags):
                continue
            try:
                objects += self.compiler.compile(
                    KERNELS, output_dir=os.path.join(self.build_temp, isa),
                    macros=[("RK_ISA", isa)], include_dirs=[FAST], depends=HEADERS,
                    extra_postargs=flags + isa_flags + KERNEL_FLAGS)
                objects += self.compiler.compile(
                    [SCAN], output_dir=os.path.join(self.build_temp, isa),
                    macros=[("RK_ISA", isa)], include_dirs=[FAST], depends=HEADERS,
                    extra_postargs=flags + isa_flags + SCAN_FLAGS)
                objects += self.compiler.compile(
                    [QUANT], output_dir=os.path.join(self.build_temp, isa),
                    macros=[("RK_ISA", isa)], include_dirs=[FAST], depends=HEADERS,
                    extra_postargs=flags + isa_flags + QUANT_FLAGS)
            except (CCompilerError, CompileError):
                if not isa_flags:
                    raise                  # no baseline, no module: the optional build fails
                continue
            if isa_flags:
                macros.append((f"RK_HAVE_{isa.upper()}", "1"))
        ext.extra_objects = objects
        ext.define_macros = list(ext.define_macros or []) + macros
        ext.extra_compile_args = flags
        ext.extra_link_args = openmp
        return super().build_extension(ext)


setup(
    ext_modules=[Extension("rnnkit.fast._fastrnn", sources=[os.path.join(FAST, "_fastrnn.c"), QUANT],
                           include_dirs=[FAST], depends=HEADERS + KERNELS + [SCAN, QUANT], optional=True)],
    cmdclass={"build_ext": BuildExt},
)
