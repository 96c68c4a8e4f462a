# Recompiles the bytecode of the sources whose text post-install rewrote
# (cpython.rs, make_reproducible). Arguments: pairs of (source file, the
# name make install would have recorded as its co_filename). Runs on the
# interpreter just built, 2.7 and 3.x alike; 2.7 is run again with -O for
# its .pyo files, 3.x writes every optimisation level at once.
import py_compile
import sys


def main():
    args = sys.argv[1:]
    for source, dfile in zip(args[0::2], args[1::2]):
        if sys.version_info[0] >= 3:
            for level in (0, 1, 2):
                py_compile.compile(source, dfile=dfile, optimize=level, doraise=True)
        else:
            py_compile.compile(source, dfile=dfile, doraise=True)


main()
