"""The architecture zoo: one module per family of names (each registration a few lines of spec fields).

The registry imports them on first use, each family's ``zoo`` module as the family table names it
(resnet_cli/families.py).
"""
