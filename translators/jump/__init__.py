"""JUMP (JackBe Universal Message Protocol: Presto, MashZone NextGen), both directions.

``translator`` holds the class (its docstring has the field mapping and error tables),
``params`` the per-operation parameter rules, ``records`` the session object mapping and
``wire`` the envelope, error codes, JSONP, XML and cookie details.
"""

from translators.jump.translator import JumpTranslator

__all__ = ["JumpTranslator"]
