"""Importing this module installs the precodec Pillow save hook with default settings.

Example
-------
>>> import precodec.plugins.pillow_register  # noqa: F401
>>> from precodec.plugins import pillow as hook
>>> hook.is_registered()
True
>>> hook.unregister()
"""

from .pillow import register

register()
