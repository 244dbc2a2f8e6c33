"""KFP v2 components: thin wrappers that parse inputs and call the ``wordocr`` core.

Each component imports the core inside its body because KFP ships only the function's source to
the task; the core is installed in the component image (and in the local venv for ``kfp.local``).
"""
