"""MariaDB MaxScale REST dialect (draft and JSON:API); see ``translators.maxscale.translator``
for the paths, the field mapping and the error table."""

from translators.maxscale.translator import MaxScaleTranslator

__all__ = ["MaxScaleTranslator"]
