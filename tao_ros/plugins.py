"""Plugin manager: entry-point discovery, selection by name, parameter checks and guarded calls."""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass, field

import pluggy

from tao_ros import hookspecs
from tao_ros.config import coerce, unknown_key
from tao_ros.errors import ConfigError, PluginError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginInfo:
    """One class a plugin provides."""

    kind: str
    name: str
    cls: type
    package: str


@dataclass
class PluginRegistry:
    """Every plugin class found, by kind and name.

    ``errors`` lists plugins whose registration hook raised: they are left out, the rest load.
    """

    infos: dict[str, dict[str, PluginInfo]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def discover(cls, extra_plugins: tuple = ()) -> PluginRegistry:
        """Load plugins of the ``tao_ros.plugins`` entry-point group plus ``extra_plugins`` objects."""
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        registry = cls({kind: {} for kind in hookspecs.KINDS})
        packages = {}
        # Loaded one by one rather than with pluggy's load_setuptools_entrypoints, which stops at
        # the first plugin that fails to import.
        for entry_point in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            if manager.get_plugin(entry_point.name) is not None:
                continue
            try:
                plugin = entry_point.load()
                manager.register(plugin, name=entry_point.name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                registry.errors.append(f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc!r}")
                log.error(registry.errors[-1])
                continue
            packages[id(plugin)] = entry_point.dist.name if entry_point.dist else entry_point.module.split(".")[0]
        for plugin in extra_plugins:
            manager.register(plugin)
        for kind, (hook_name, protocol) in hookspecs.KINDS.items():
            for impl in getattr(manager.hook, hook_name).get_hookimpls():
                plugin_name = manager.get_name(impl.plugin) or repr(impl.plugin)
                # pluggy stops a whole hook call at the first exception: call each plugin alone.
                try:
                    classes = list(impl.function() or [])
                except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                    registry.errors.append(f"plugin {plugin_name!r} raised in {hook_name}: {exc!r}")
                    log.error(registry.errors[-1])
                    continue
                package = packages.get(id(impl.plugin)) or getattr(impl.plugin, "__name__", plugin_name).split(".")[0]
                for plugin_cls in classes:
                    registry._add(kind, plugin_cls, package, plugin_name, hook_name, protocol)
        return registry

    def _add(self, kind, plugin_cls, package, plugin_name, hook_name, protocol) -> None:
        name = getattr(plugin_cls, "name", None)
        missing = [m for m in required_attributes(protocol) if not hasattr(plugin_cls, m)]
        if not isinstance(name, str) or missing:
            self.errors.append(f"plugin {plugin_name!r} returned {plugin_cls!r} from {hook_name}, which lacks "
                               f"{missing or ['name']}: see tao_ros.hookspecs.{protocol.__name__}")
            log.error(self.errors[-1])
            return
        if name in self.infos[kind]:
            self.errors.append(f"{kind} {name!r} from {package!r} ignored: {self.infos[kind][name].package!r} "
                               f"already provides a {kind} of that name")
            log.error(self.errors[-1])
            return
        self.infos[kind][name] = PluginInfo(kind, name, plugin_cls, package)

    def names(self, kind: str) -> list[str]:
        return sorted(self.infos[kind])

    def info(self, kind: str, name: str) -> PluginInfo:
        if kind not in self.infos:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {sorted(self.infos)}")
        if name not in self.infos[kind]:
            raise PluginError(f"unknown {kind} {name!r}; available: {', '.join(self.names(kind)) or 'none'}. "
                              "Run 'tao-ros plugins' to list every plugin and the package it comes from.")
        return self.infos[kind][name]

    def check_config(self, plugin_params: dict[str, dict]) -> None:
        """Every configured plugin section names a known plugin (of any kind) and only its declared,
        valid parameters, whether or not the plugin is in use: a typo is an error, never ignored."""
        by_name = {name: info for infos in self.infos.values() for name, info in infos.items()}
        for name, params in plugin_params.items():
            if name not in by_name:
                raise unknown_key(name, params, by_name, "plugin section")
            check_params(by_name[name], params)

    def create(self, kind: str, name: str, params: dict | None = None):
        """Instantiate the ``kind`` plugin ``name`` with checked ``params`` (missing ones get defaults)."""
        info = self.info(kind, name)
        values = check_params(info, params or {})
        try:
            return info.cls(**values)
        except (PluginError, ConfigError):  # a plugin refusing a combination of its parameters says why
            raise
        except Exception as exc:
            raise PluginError(f"{kind} {name!r} (from {info.package!r}) failed to start: {exc}") from exc


def required_attributes(protocol: type) -> list[str]:
    """Attributes a class must have to follow ``protocol``: ``name``, ``params`` and its methods."""
    methods = [m for m, v in vars(protocol).items() if callable(v) and not m.startswith("_")]
    return ["name", "params", *protocol.__annotations__.keys() - {"name", "params"}, *methods]


def check_params(info: PluginInfo, params: dict) -> dict:
    """Merge ``params`` over the class's defaults; raise ConfigError naming any bad key or value."""
    declared: dict[str, hookspecs.Param] = info.cls.params
    values = {key: p.default for key, p in declared.items()}
    for key, value in params.items():
        full_key = f"{info.name}.{key}"
        if key not in declared:
            raise unknown_key(full_key, value, [f"{info.name}.{k}" for k in declared],
                              f"parameter of {info.kind} {info.name!r}")
        values[key] = coerce(full_key, value, declared[key])
    return values


class GuardedPlugin:
    """Calls a plugin's methods so that an exception is logged with plugin and method, counted,
    and replaced by a fallback result instead of stopping the pipeline."""

    def __init__(self, kind: str, plugin):
        self.kind = kind
        self.plugin = plugin
        self.name = plugin.name
        self.errors = 0

    def call(self, method: str, fallback, *args, **kwargs):
        try:
            return getattr(self.plugin, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - one bad plugin call must not stop the stream
            self.errors += 1
            if self.errors <= 3 or self.errors % 100 == 0:
                log.error("%s %r raised in %s (error %d): %r", self.kind, self.name, method, self.errors, exc)
            return fallback() if callable(fallback) else fallback
