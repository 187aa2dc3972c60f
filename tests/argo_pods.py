"""The Pod each Workflow template becomes, for kubernetes-validate.

Stand-in, named: no Argo controller can run here, so this builds the main container's Pod the way
the controller does from a script/container template (image, command + script path, env,
resources, volumes, nodeSelector, tolerations, service account). The controller's own init and
wait containers are not modelled; they are Argo's, not ours.
"""

from __future__ import annotations

from typing import Any


def pods_for(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workflow["spec"]
    pods = []
    for template in spec["templates"]:
        if "dag" in template or "steps" in template:  # no pod of their own
            continue
        body = dict(template.get("script") or template["container"])
        container = {k: v for k, v in body.items() if k != "source"}
        container["name"] = "main"
        if "source" in body:
            container["args"] = ["/argo/staging/script"]
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "serviceAccountName": spec.get("serviceAccountName", "default"),
            "containers": [container],
            "volumes": spec.get("volumes", []),
        }
        for key in ("nodeSelector", "tolerations", "affinity"):
            if key in template:
                pod_spec[key] = template[key]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"wf-{template['name']}",
                    "annotations": (template.get("metadata") or {}).get("annotations", {}),
                },
                "spec": pod_spec,
            }
        )
    return pods
