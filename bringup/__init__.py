"""Helpers shared by eval.py, the scripts, the notebooks and the tests of this project.

Importing this package prepares the environment of ttnn and torch before they are imported, so
import it before `import ttnn`. It keeps ttnn's import-time DEBUG dump and per-event info lines
out of the terminal, while warnings and errors still show. It makes OpenMP threads wait
passively. On a machine without a Tenstorrent card, it points ttnn's driver at the n150 cluster
descriptor that ships with the emulator.
"""

from bringup.environment import configure_ttnn_environment

configure_ttnn_environment()
