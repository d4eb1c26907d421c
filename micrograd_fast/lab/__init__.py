"""The lab: micrograd_fast's command-line demos (``micrograd-fast``).

``demo`` trains the moons MLP, ``walkthrough`` narrates backpropagation on a
small expression, ``run`` runs micrograd scripts on micrograd_fast.  Each
command lives in its own module; ``cli`` parses the command line.
"""
