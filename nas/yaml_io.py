"""The one reader of every YAML file a user hands ``nas`` (search file, ``arch.yaml``, training
config): safe loading only, errors as ``FILE:LINE:COLUMN: what was expected``, a duplicate key
rejected rather than silently overwritten, and the size of the document after alias expansion
bounded, so a few hundred bytes of nested aliases ("billion laughs") fail at once instead of
expanding until the machine runs out of time or memory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError

MAX_NODES = 100_000
"""Values (scalars, lists, mappings) a document may hold with every alias expanded; a search
file has a few hundred."""


class YamlError(NasError):
    """A file that is not a readable YAML document; the message starts with ``FILE:LINE:COL``."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a float as OmegaConf does (YAML 1.2)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


_MERGE = "tag:yaml.org,2002:merge"


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """The plain data (dicts, lists, scalars) of the YAML file at ``path``; ``what`` names the
    file in errors (``search file``, ``architecture file``)."""
    path = Path(path)
    if path.is_dir():
        raise YamlError(f"{what} {path}: expected a YAML file, found a directory")
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return parse_yaml(path.read_bytes(), str(path))


def read_mapping(path: str | Path, what: str = "file") -> dict[str, Any]:
    """``read_yaml`` of a file whose top level must be a mapping of keys (every config file)."""
    data = read_yaml(path, what)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"{type(data).__name__} {data!r:.60}"
        raise YamlError(f"{path}: expected a mapping of keys at the top, found {found}")
    return data


def parse_yaml(text: str | bytes, source: str) -> Any:
    """The plain data of one YAML document; ``source`` (a file name) starts every error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, source)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        context = f" ({err.context}" if err.context else ""
        if context and err.context_mark and err.context_mark is not mark:
            context += f" at {err.context_mark.line + 1}:{err.context_mark.column + 1}"
        context += ")" if context else ""
        raise YamlError(f"{where}: {err.problem}{context}") from None
    except yaml.YAMLError as err:
        raise YamlError(f"{source}: not a YAML text file: {err}") from None
    except RecursionError:
        raise YamlError(f"{source}: nested too deeply to read") from None
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Reject a document whose alias-expanded size exceeds ``MAX_NODES``, a recursive alias and
    a mapping that repeats a key. Each distinct node is visited once, so the check itself stays
    linear in the file's size however far its aliases would expand."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise YamlError(f"{_at(source, node)}: an alias refers to a value that contains it")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE:
                    if key_node.value in seen:
                        raise YamlError(
                            f"{_at(source, key_node)}: duplicate key {key_node.value!r} "
                            f"(first given at line {seen[key_node.value].start_mark.line + 1})"
                        )
                    seen[key_node.value] = key_node
                total += size(key_node) + size(value_node)
        open_nodes.discard(key)
        sizes[key] = total
        if total > MAX_NODES:
            raise YamlError(
                f"{_at(source, node)}: expands to more than {MAX_NODES:,} values through its "
                "aliases (&anchor/*alias); expected a document of ordinary size"
            )
        return total

    size(root)


def _at(source: str, node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{source}:{mark.line + 1}:{mark.column + 1}"
