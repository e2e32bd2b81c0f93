"""Tools: the catalogue of schemas, the backends that run them, and their session binding."""

from conversation_engine.tools.base import ToolBackend
from conversation_engine.tools.catalogue import ToolCatalogue
from conversation_engine.tools.http import HttpToolBackend
from conversation_engine.tools.python_tools import PythonTool, PythonToolBackend, python_tool
from conversation_engine.tools.session import SessionTools
from conversation_engine.tools.shop import EmulatedShop

__all__ = [
    "EmulatedShop",
    "HttpToolBackend",
    "PythonTool",
    "PythonToolBackend",
    "SessionTools",
    "ToolBackend",
    "ToolCatalogue",
    "python_tool",
]
