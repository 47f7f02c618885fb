"""Helpers shared by eval.py, the scripts, the notebooks and the tests of this project.

Importing this package prepares the environment of ttnn before ttnn itself is imported: it keeps
ttnn's import-time DEBUG dump and per-event info lines out of the terminal (warnings and errors
still show), and, on a machine without a Tenstorrent card, points ttnn's driver at the n150
cluster descriptor that ships with the emulator. Import it before `import ttnn`.
"""

from bringup.environment import configure_ttnn_environment

configure_ttnn_environment()
