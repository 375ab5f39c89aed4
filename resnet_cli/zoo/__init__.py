"""The architecture zoo: importing this package registers every named and parametric architecture.

One module per family of names; each registration is a few lines of spec fields.
"""

from . import densenets, resnets, seeds  # noqa: F401
