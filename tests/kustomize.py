"""What `kubectl kustomize` would build from deploy/kubernetes, for tests on a machine without
kustomize: the resources a kustomization lists (files and other kustomizations), its secret
generator, its JSON 6902 patches and its namespace. Anything else it refuses, so a field the
manifests start to use cannot pass the tests unapplied."""

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

APPLIED_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "patches",
    "secretGenerator",
    "generatorOptions",
    "images",
}
# Kinds without a namespace among those the manifests use.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


class Unsupported(Exception):
    """The kustomization asks for something this resolver does not apply."""


def build(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unapplied = set(kustomization) - APPLIED_FIELDS
    if unapplied:
        raise Unsupported(f"{directory}: kustomization fields not applied here: {unapplied}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources += build(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    generated = kustomization.get("secretGenerator", [])
    if generated and not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise Unsupported("generated names with a hash suffix: references would need renaming")
    resources += [_secret(directory, generator) for generator in generated]
    for patch in kustomization.get("patches", []):
        _patch(directory, resources, patch)
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    namespace = kustomization.get("namespace")
    if namespace is not None:
        for resource in resources:
            if resource["kind"] == "Namespace":
                if resource["metadata"]["name"] != namespace:
                    raise Unsupported(f"a Namespace other than {namespace} would be renamed")
            elif resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    return resources


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; a missing file is read from its `.example` beside it, which is what an
    operator copies and fills in (the keys are what matters to the build's shape)."""
    if not path.exists():
        path = path.with_name(path.name + ".example")
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def _secret(directory: Path, generator: dict[str, Any]) -> Resource:
    if set(generator) - {"name", "envs"}:
        raise Unsupported(f"secretGenerator fields: {set(generator)}")
    data: dict[str, str] = {}
    for name in generator["envs"]:
        for key, value in env_file(directory / name).items():
            data[key] = base64.b64encode(value.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": generator["name"]},
        "type": "Opaque",
        "data": data,
    }


def _patch(directory: Path, resources: list[Resource], patch: dict[str, Any]) -> None:
    target = patch["target"]
    if set(target) - {"kind", "name", "group", "version"}:
        raise Unsupported(f"patch target fields: {set(target)}")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise Unsupported("only JSON 6902 patches (a list of operations) are applied here")
    matched = [
        resource
        for resource in resources
        if resource["kind"] == target["kind"] and resource["metadata"]["name"] == target["name"]
    ]
    if not matched:
        raise LookupError(f"patch target {target} matches no resource")
    for resource in matched:
        for operation in operations:
            _apply(resource, operation)


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    """`kustomize edit set image NAME=NEW_NAME:TAG`: containers of image NAME get the new one."""
    if set(image) - {"name", "newName", "newTag"}:
        raise Unsupported(f"images fields: {set(image)}")
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _apply(resource: Resource, operation: dict[str, Any]) -> None:
    """One JSON 6902 operation: add, replace or remove, at a JSON pointer."""
    op, pointer = operation["op"], operation["path"]
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    node: Any = resource
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    exists = (last == "-" or int(last) < len(node)) if isinstance(node, list) else last in node
    if op in ("replace", "remove") and not exists:
        raise LookupError(f"{op} {pointer}: nothing there")
    if op == "remove":
        del node[int(last) if isinstance(node, list) else last]
    elif op in ("add", "replace"):
        value = copy.deepcopy(operation["value"])
        if isinstance(node, list):
            if last == "-":
                node.append(value)
            elif op == "add":
                node.insert(int(last), value)
            else:
                node[int(last)] = value
        else:
            node[last] = value
    else:
        raise Unsupported(f"patch operation {op}")
