"""The Huawei Cloud GeminiDB (GaussDB NoSQL, Redis API) sessions dialect; see
``translators.geminidb.translator`` for the mapping and error tables and
``translators.geminidb.signing`` for AK/SK request signatures."""

from translators.geminidb.translator import GeminiDbTranslator

__all__ = ["GeminiDbTranslator"]
