"""The verbs every asset group has (``create``, ``show``, ``list``), made once for models, data, environments and
components: a version from a YAML file and options (a local ``path:`` or build context is uploaded by the SDK)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from batchpoint.cli.az_ml.sdk import File, Session, Sets, YamlFile, as_dict, required, verb
from batchpoint.cli.az_ml.yaml_files import Source, load

Version = Annotated[
    str | None, typer.Option("--version", "-v", help="The version (default: the YAML file's, or the next).")
]
Label = Annotated[str | None, typer.Option("--label", "-l", help="A label instead of a version, e.g. latest.")]
AssetName = Annotated[str | None, typer.Option("--name", "-n", help="The name (default: the YAML file's name:).")]
Type = Annotated[
    str | None, typer.Option("--type", "-t", help="e.g. custom_model, mlflow_model, uri_folder, uri_file.")
]
LocalPath = Annotated[str | None, typer.Option("--path", "-p", help="A local file or folder (uploaded), or a URI.")]
Description = Annotated[str | None, typer.Option("--description", "-d", help="A description.")]


@dataclass(frozen=True)
class AssetKind:
    loader: str
    """azure-ai-ml's ``load_*`` function."""
    operations: str
    """MLClient's attribute for them."""
    from_options: bool = False
    """``create`` takes ``--type``/``--path``/``--description`` and needs no file (models, data)."""


def add_asset_verbs(app: typer.Typer, kind: AssetKind) -> None:
    """``create``, ``show`` and ``list`` on ``app``."""

    def create_version(session: Session, source: Source) -> Any:
        import azure.ai.ml

        asset = load(getattr(azure.ai.ml, kind.loader), source)
        return as_dict(getattr(session.ml, kind.operations).create_or_update(asset))

    if kind.from_options:

        @verb(app, "create")
        def create_from_options(
            session: Session,
            file: File = None,
            name: AssetName = None,
            version: Version = None,
            type_: Type = None,
            path: LocalPath = None,
            description: Description = None,
            set_: Sets = None,
        ) -> Any:
            """Register a version from a YAML file, or from --name, --type and --path."""
            options = {
                "name": ("--name", name),
                "version": ("--version", version),
                "type": ("--type", type_),
                "path": ("--path", path),
                "description": ("--description", description),
            }
            return create_version(session, Source(file, set_ or [], options))
    else:

        @verb(app, "create")
        def create_from_file(
            session: Session, file: YamlFile, name: AssetName = None, version: Version = None, set_: Sets = None
        ) -> Any:
            """Register a version from a YAML file."""
            options = {"name": ("--name", name), "version": ("--version", version)}
            return create_version(session, Source(file, set_ or [], options))

    @verb(app, "show")
    def show(session: Session, name: AssetName = None, version: Version = None, label: Label = None) -> Any:
        """Show a version (or the one a label names)."""
        operations = getattr(session.ml, kind.operations)
        return as_dict(
            operations.get(required(name, "--name"), version=version, label=None if version else label or "latest")
        )

    @verb(app, "list")
    def list_(session: Session, name: AssetName = None) -> Any:
        """The names, or the versions of --name."""
        return [as_dict(asset) for asset in getattr(session.ml, kind.operations).list(name=name)]
