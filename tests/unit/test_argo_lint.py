"""`bioinfra lint` agrees with the Argo v3.7 controller's admission rules (issue #16 point 2).

Argo is the spec. The cases below are derived from Argo v3.7.18's workflow/validate/validate_test.go
(each names the Go test it comes from) and, where that file has no test for a rule, from the rule in
validate.go itself (each names the Go function). The specs are written here in our own words (our
names, images and commands): only the fact is taken, "this shape -> accepted" or "this shape ->
rejected with this message". Where the Go test only checks part of the message (ErrorContains), the
full message asserted here is the one validate.go formats for our spec, and `argo_says` keeps the
part Argo's own test asserts.

Then: every Workflow the project renders (the golden files) and every example Argo's own tests
expect valid lint clean, or the defect is named.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bioinfra.argo import Workflow, lint
from bioinfra.argo.validate import check_workflow, lint_yaml
from bioinfra.errors import ExitCode, WorkflowInvalidError
from tests.conftest import REPO

HEAD = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  generateName: lint-case-\n"
NAME_RULE = ("name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric "
             "character (e.g. My-name1-2, 123-NAME)")
PARAM_NAME_RULE = ("Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-' "
                   "e.g. my_param_1, MY-PARAM-1")
KINDS = "choose one of: container, containerSet, steps, script, resource, dag, suspend, template, template ref"


@dataclass(frozen=True)
class Case:
    id: str
    cite: str  # the Go test (validate_test.go) or function (validate.go) the fact comes from
    spec: str  # YAML below `spec:` (or a whole document when it starts with "apiVersion")
    expect: str | None  # None: accepted; else Argo's exact message
    argo_says: str = ""  # the part of the message Argo's own test asserts (ErrorContains)
    lint_mode: bool = False  # ValidateOpts{Lint: true}, as `argo lint` / --allow-missing-arguments

    def doc(self) -> dict:
        text = textwrap.dedent(self.spec)
        if not text.lstrip().startswith("apiVersion"):
            text = HEAD + "spec:\n" + textwrap.indent(text, "  ")
        return yaml.safe_load(text)


def argo_problems(doc: dict, *, lint_mode: bool = False) -> list[str]:
    return [p.message for p in lint(doc, schema=False, lint_mode=lint_mode)
            if p.source == "argo" and p.severity == "error"]


# ----- cases derived from validate_test.go -------------------------------------------------------

FROM_GO_TESTS = [
    Case("duplicate-template", "TestDuplicateOrEmptyNames", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: "biocontainers/fastqc:0.12.1"}
        - name: qc
          container: {image: "biocontainers/fastqc:0.12.1"}
        """, "spec.templates[1].name 'qc' is not unique", "not unique"),
    Case("duplicate-input", "TestDuplicateOrEmptyNames", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters:
            - {name: reads, value: r1.fq.gz}
            - {name: reads, value: r2.fq.gz}
          container: {image: "biocontainers/fastqc:0.12.1"}
        """, "templates.qc.inputs.parameters[1].name 'reads' is not unique", "not unique"),
    Case("empty-input-name", "TestDuplicateOrEmptyNames", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters:
            - {name: "", value: r1.fq.gz}
          container: {image: "biocontainers/fastqc:0.12.1"}
        """, "templates.qc.inputs.parameters[0].name is required", "name is required"),
    Case("undeclared-input-in-leaf", "TestUnresolved", """
        entrypoint: align
        templates:
        - name: align
          container: {image: "bwa:{{inputs.parameters.version}}"}
        """, "templates.align: failed to resolve {{inputs.parameters.version}}", "failed to resolve"),
    Case("undeclared-input-in-called-leaf", "TestUnresolved", """
        entrypoint: main
        templates:
        - name: main
          inputs:
            parameters: [{name: sample, value: lambda}]
          steps:
          - - name: qc
              template: fastqc
              arguments:
                parameters: [{name: sample, value: "{{inputs.parameters.sample}}"}]
        - name: fastqc
          container: {image: fastqc, args: ["{{inputs.parameters.sample}}"]}
        """, "templates.main.steps[0].qc templates.fastqc: failed to resolve {{inputs.parameters.sample}}",
         "failed to resolve"),
    Case("undeclared-step-output", "TestUnresolved", """
        entrypoint: main
        templates:
        - name: fastqc
          container: {image: fastqc}
        - name: main
          steps:
          - - {name: qc, template: fastqc}
          outputs:
            parameters:
            - name: report
              valueFrom: {parameter: "{{steps.qc.outputs.parameters.report}}"}
        """, "templates.main.outputs failed to resolve {{steps.qc.outputs.parameters.report}}", "failed to resolve"),
    Case("io-path-placeholders", "TestResolveIOArtifactPathPlaceholders", """
        entrypoint: head
        arguments:
          parameters: [{name: n, value: "4"}]
          artifacts:
          - name: reads
            raw: {data: "@r1\\nACGT\\n+\\nFFFF\\n"}
        templates:
        - name: head
          inputs:
            parameters: [{name: n}]
            artifacts: [{name: reads, path: /in/reads.fq}]
          outputs:
            parameters:
            - name: lines
              valueFrom: {path: /out/lines}
            artifacts: [{name: first, path: /out/first.fq}]
          container:
            image: debian:bookworm-slim
            command: [sh, -c]
            args: ['head -n {{inputs.parameters.n}} "{{inputs.artifacts.reads.path}}" | tee "{{outputs.artifacts.first.path}}" | wc -l > "{{outputs.parameters.lines.path}}"']
        """, None),
    Case("output-param-path-placeholder", "TestResolveOutputParameterPathPlaceholder", """
        entrypoint: version
        templates:
        - name: version
          outputs:
            parameters:
            - name: bwa-version
              valueFrom: {path: /tmp/bwa-version}
          container: {image: bwa, command: [sh, -c, 'bwa 2>&1 | grep Version > {{outputs.parameters.bwa-version.path}}']}
        """, None),
    Case("step-output-reference", "TestStepOutputReference", """
        entrypoint: count
        templates:
        - name: count
          inputs:
            parameters: [{name: reads, value: r1.fq}]
          container: {image: seqkit}
          outputs:
            parameters:
            - name: total
              valueFrom: {path: /tmp/total}
        - name: twice
          steps:
          - - {name: first, template: count}
          - - name: second
              template: count
              arguments:
                parameters: [{name: reads, value: "{{steps.first.outputs.parameters.total}}"}]
        """, None),
    Case("step-status-of-earlier-group", "TestStepStatusReference", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: first
              template: say
              arguments: {parameters: [{name: text, value: started}]}
          - - name: second
              template: say
              arguments: {parameters: [{name: text, value: "{{steps.first.status}}"}]}
        - name: say
          inputs:
            parameters: [{name: text, value: none}]
          container: {image: debian:bookworm-slim, args: ["echo {{inputs.parameters.text}}"]}
        """, None),
    Case("step-status-of-later-group", "TestStepStatusReferenceNoFutureReference", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: first
              template: say
              arguments: {parameters: [{name: text, value: "{{steps.second.status}}"}]}
          - - name: second
              template: say
              arguments: {parameters: [{name: text, value: "{{steps.first.status}}"}]}
        - name: say
          inputs:
            parameters: [{name: text, value: none}]
          container: {image: debian:bookworm-slim, args: ["echo {{inputs.parameters.text}}"]}
        """, "templates.main.steps failed to resolve {{steps.second.status}}",
         "failed to resolve {{steps.two.status}}".replace("two", "second")),
    Case("step-artifact-reference", "TestStepArtReference", """
        entrypoint: main
        templates:
        - name: index
          container: {image: bwa}
          outputs:
            artifacts: [{name: bwt_index, path: /ref/index}]
        - name: align
          inputs:
            parameters: [{name: sample}]
            artifacts: [{name: index, path: /ref/index}]
          container: {image: bwa, command: [echo, "{{inputs.parameters.sample}}"]}
          outputs:
            parameters:
            - name: bam
              valueFrom: {path: /out/bam-path}
        - name: main
          steps:
          - - {name: build, template: index}
          - - name: map
              template: align
              arguments:
                parameters: [{name: sample, value: lambda}]
                artifacts: [{name: index, from: "{{steps.build.outputs.artifacts.bwt_index}}"}]
        """, None),
    Case("input-from-configmap", "TestParamWithValueFromConfigMapRef", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters:
            - name: threads
              valueFrom:
                configMapKeyRef: {name: pipeline-settings, key: threads}
          container: {image: fastqc}
        """, None),
    Case("entrypoint-input-without-value", "TestParamWithoutValue", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters: [{name: reads}]
          container: {image: fastqc}
        """, "templates.qc inputs.parameters.reads was not supplied", "not supplied"),
    Case("global-parameters", "TestGlobalParam", """
        priority: 10
        entrypoint: main
        arguments:
          parameters:
          - {name: sample, value: lambda}
          - {name: reference, value: lambda.fa}
        templates:
        - name: main
          inputs:
            parameters:
            - name: sample
            - name: label
              value: "{{workflow.parameters.sample}}"
          steps:
          - - name: align
              template: bwa
              arguments:
                parameters:
                - {name: sample, value: other}
                - {name: outer, value: "{{inputs.parameters.sample}}"}
                - {name: reference, value: "{{workflow.parameters.reference}}"}
                - {name: label, value: "{{inputs.parameters.label}}"}
        - name: bwa
          inputs:
            parameters: [{name: sample}, {name: outer}, {name: reference}, {name: label}]
          container:
            image: bwa
            args: ["{{workflow.parameters.sample}} {{inputs.parameters.sample}} {{inputs.parameters.outer}} {{inputs.parameters.reference}} {{inputs.parameters.label}}"]
        """, None),
    Case("nested-global-artifact", "TestGlobalParam", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {name: build, template: level-1}
          - - name: use
              template: use-index
              arguments:
                artifacts: [{name: index, from: "{{workflow.outputs.artifacts.bwa-index}}"}]
        - name: level-1
          steps:
          - - {name: inner, template: level-2}
        - name: level-2
          steps:
          - - {name: inner, template: make-index}
        - name: make-index
          container: {image: bwa, command: [sh, -c, "bwa index ref.fa"]}
          outputs:
            artifacts: [{name: index, path: /ref, globalName: bwa-index}]
        - name: use-index
          inputs:
            artifacts: [{name: index, path: /ref}]
          container: {image: bwa, command: [ls, /ref]}
        """, None),
    Case("spec-argument-without-value", "TestGlobalParam", """
        entrypoint: qc
        arguments:
          parameters: [{name: missing}]
        templates:
        - name: qc
          container: {image: fastqc, command: [fastqc, --version]}
        """, "spec.arguments.missing.value or spec.arguments.missing.valueFrom is required"),
    Case("template-name-underscore", "TestInvalidTemplateName", """
        entrypoint: fast_qc
        templates:
        - name: fast_qc
          container: {image: fastqc}
        """, f"spec.templates[0].name: 'fast_qc' is invalid: {NAME_RULE}", "is invalid"),
    Case("argument-parameter-name", "TestInvalidArgParamName", """
        entrypoint: qc
        arguments:
          parameters: [{name: "sample#1", value: lambda}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, f"spec.arguments.parameters[0].name: 'sample#1' is invalid: {PARAM_NAME_RULE}"),
    Case("argument-artifact-name", "TestInvalidArgArtName", """
        entrypoint: qc
        arguments:
          artifacts:
          - name: "&-reads"
            http: {url: "https://example.org/r1.fq.gz"}
        templates:
        - name: qc
          inputs:
            artifacts: [{name: "&-reads", path: /in/r1.fq.gz}]
          container: {image: fastqc}
        """, f"spec.arguments.artifacts[0].name: '&-reads' is invalid: {PARAM_NAME_RULE}", "is invalid"),
    Case("step-name-with-dot", "TestInvalidStepName", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: qc.r1
              template: fastqc
        - name: fastqc
          container: {image: fastqc}
        """, f"templates.main.steps[0].name 'qc.r1' is invalid: {NAME_RULE}", "is invalid"),
    Case("input-parameter-name", "TestInvalidInputParamName", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters: [{name: "reads+1", default: r1.fq}]
          container: {image: fastqc, args: ["{{inputs.parameters.reads+1}}"]}
        """, f"templates.qc.inputs.parameters[0].name: 'reads+1' is invalid: {PARAM_NAME_RULE}", "is invalid"),
    Case("input-artifact-name", "TestInvalidInputArtName", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {name: qc, template: fastqc}
        - name: fastqc
          inputs:
            artifacts:
            - name: "reads(1"
              path: /in/r1.fq
              http: {url: "https://example.org/r1.fq"}
          container: {image: fastqc}
        """, f"templates.main.steps[0].qc templates.fastqc.inputs.artifacts[0].name: 'reads(1' is invalid: "
             f"{PARAM_NAME_RULE}", "is invalid"),
    Case("output-artifact-name", "TestInvalidOutputArtName", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          outputs:
            artifacts: [{name: "!report", path: /out/report.html}]
        """, f"templates.qc.outputs.artifacts [0].name: '!report' is invalid: {PARAM_NAME_RULE}"),
    Case("output-parameter-name", "TestInvalidOutputParam", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          outputs:
            parameters:
            - name: "reads-total}"
              valueFrom: {path: /out/total}
        """, f"templates.qc.outputs.parameters [0].name: 'reads-total}}' is invalid: {PARAM_NAME_RULE}", "is invalid"),
    Case("output-parameter-no-value", "TestInvalidOutputParam", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          outputs:
            parameters: [{name: total}]
        """, "templates.qc.outputs.parameters.total does not have valueFrom or value specified",
         "does not have valueFrom or value specified"),
    Case("output-parameter-two-sources", "TestInvalidOutputParam", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          outputs:
            parameters:
            - name: total
              valueFrom: {path: /out/total, jqFilter: .total}
        """, "multiple valueFrom types specified. choose one of: path, jqFilter, jsonPath, parameter, raw",
         "multiple valueFrom"),
    Case("container-output-from-parameter", "TestInvalidOutputParam", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          outputs:
            parameters:
            - name: total
              valueFrom: {parameter: total}
        """, "templates.qc.outputs.parameters.total.path must be specified for Container templates",
         ".path must be specified for Container templates"),
    Case("steps-output-from-path", "TestInvalidOutputParam", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {name: qc, template: fastqc}
          outputs:
            parameters:
            - name: total
              valueFrom: {path: /out/total}
        - name: fastqc
          container: {image: fastqc}
          outputs:
            parameters:
            - name: total
              valueFrom: {path: /out/total}
        """, "templates.main.outputs.parameters.total.parameter or expression must be specified for Steps templates",
         ".parameter or expression must be specified for Steps templates"),
    Case("container-and-script", "TestMultipleTemplateTypes", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          script: {image: "python:3.12-slim", command: [python], source: "print(1)"}
        """, f"templates.qc multiple template types specified. {KINDS}", "multiple template types specified"),
    Case("failures-outside-exit-handler", "TestExitHandler", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: debian:bookworm-slim, args: ["echo {{workflow.failures}}"]}
        """, "templates.qc: failed to resolve {{workflow.failures}}"),
    Case("status-in-exit-handler", "TestExitHandler", """
        entrypoint: qc
        onExit: notify
        templates:
        - name: qc
          container: {image: fastqc}
        - name: notify
          container: {image: curl, args: ["{{workflow.status}} {{workflow.uid}} {{workflow.duration}} {{workflow.failures}}"]}
        """, None),
    Case("priority-variable", "TestPriorityVariable", """
        entrypoint: qc
        priority: 5
        templates:
        - name: qc
          container: {image: fastqc, args: ["{{workflow.priority}}"]}
        """, None),
    Case("artifact-path-on-volume-mount", "TestVolumeMountArtifactPathCollision", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            artifacts:
            - name: code
              path: /workspace
              git: {repo: "https://example.org/lab/pipeline.git"}
          container:
            image: fastqc
            volumeMounts: [{name: workspace, mountPath: /workspace}]
        """, "templates.qc.inputs.artifacts[0].path '/workspace' already mounted in container.volumeMounts.workspace",
         "already mounted"),
    Case("artifact-path-beside-volume-mount", "TestVolumeMountArtifactPathCollision", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            artifacts:
            - name: code
              path: /code
              git: {repo: "https://example.org/lab/pipeline.git"}
          container:
            image: fastqc
            volumeMounts: [{name: workspace, mountPath: /workspace}]
        """, None),
    Case("negative-deadline", "TestValidActiveDeadlineSeconds", """
        entrypoint: qc
        templates:
        - name: qc
          activeDeadlineSeconds: -5
          container: {image: fastqc}
        """, "templates.qc.activeDeadlineSeconds must be a positive integer > 0 or an argo variable",
         "activeDeadlineSeconds must be a positive integer > 0"),
    Case("parallelism-on-leaf", "TestLeafWithParallelism", """
        entrypoint: qc
        templates:
        - name: qc
          parallelism: 4
          container: {image: fastqc}
        """, "templates.qc.parallelism is only valid for steps and dag templates", "is only valid"),
    Case("step-artifact-argument-without-source", "TestInvalidArgumentNoFromOrLocation", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: qc
              template: fastqc
              arguments:
                artifacts: [{name: reads}]
        - name: fastqc
          inputs:
            artifacts: [{name: reads, path: /in/reads.fq}]
          container: {image: fastqc}
        """, "templates.main.steps[0].qc.arguments.reads.from, artifact location, or key is required",
         "from, artifact location, or key is required"),
    Case("task-artifact-argument-without-source", "TestInvalidArgumentNoFromOrLocation", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: qc
              template: fastqc
              arguments:
                artifacts: [{name: reads}]
        - name: fastqc
          inputs:
            artifacts: [{name: reads, path: /in/reads.fq}]
          container: {image: fastqc}
        """, "templates.main.tasks.qc.arguments.reads.from, artifact location, or key is required",
         "from, artifact location, or key is required"),
    Case("step-parameter-argument-without-value", "TestInvalidArgumentNoValue", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: qc
              template: fastqc
              arguments:
                parameters: [{name: reads}]
        - name: fastqc
          inputs:
            parameters: [{name: reads}]
          container: {image: fastqc}
        """, "templates.main.steps[0].qc.arguments.reads.value or templates.main.steps[0].qc.arguments.reads.valueFrom "
             "is required", ".valueFrom is required"),
    Case("with-items-of-every-type", "TestValidWithItems", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: say
              template: echo
              arguments:
                parameters: [{name: text, value: "{{item}}"}]
              withItems: [7, true, lambda, 0.5, {sample: S1, lane: "1"}]
        - name: echo
          inputs:
            parameters: [{name: text}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.text}}"]}
        """, None),
    Case("pod-name-variable", "TestPodNameVariable", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc, args: ["{{pod.name}}"]}
          outputs:
            artifacts:
            - name: report
              path: /out/report.html
              s3: {bucket: lab-results, key: "qc/{{pod.name}}/report.html"}
        """, None),
    Case("spec-argument-open-when-linting", "TestSpecArgumentNoValue", """
        entrypoint: qc
        arguments:
          parameters: [{name: sample}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, None, lint_mode=True),
    Case("spec-argument-open-at-submission", "TestSpecArgumentNoValue", """
        entrypoint: qc
        arguments:
          parameters: [{name: sample}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, "spec.arguments.sample.value or spec.arguments.sample.valueFrom is required"),
    Case("snake-case-names", "TestSpecArgumentSnakeCase", """
        entrypoint: qc
        arguments:
          artifacts:
          - name: __reads
            http: {url: "https://example.org/r1.fq.gz"}
          parameters: [{name: my_sample, value: lambda}]
        templates:
        - name: qc
          inputs:
            artifacts: [{name: __reads, path: /in/r1.fq.gz}]
          container: {image: fastqc, args: ["{{workflow.parameters.my_sample}}"]}
        """, None, lint_mode=True),
    Case("sequence-count-and-end", "TestSpecBadSequenceCountAndEnd", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: count-up
              template: echo
              arguments:
                parameters: [{name: n, value: "{{item}}"}]
              withSequence: {count: "5", end: "5"}
        - name: echo
          inputs:
            parameters: [{name: n}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.n}}"]}
        """, "templates.main.steps[0].count-up only one of count or end can be defined in withSequence", lint_mode=True),
    Case("custom-variable-not-checked", "TestCustomTemplateVariable", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: "fastqc:{{lab.tag}}"}
        """, None, lint_mode=True),
    Case("nested-missing-input", "TestNestedTemplateRefWithError", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {name: call-a, template: a}
        - name: a
          steps:
          - - {name: call-b, template: b}
        - name: b
          inputs:
            parameters: [{name: message}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.message}}"]}
        """, "templates.main.steps[0].call-a templates.a.steps[0].call-b templates.b inputs.parameters.message was not supplied"),
    Case("valid-resource", "TestValidResourceWorkflow", """
        entrypoint: settings
        templates:
        - name: settings
          resource:
            action: create
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: qc-settings}
        """, None),
    Case("resource-manifest-not-yaml", "TestInvalidResourceWorkflow", """
        entrypoint: settings
        templates:
        - name: settings
          resource:
            action: apply
            manifest: |
              not yaml at all
              kind: ConfigMap
        """, "templates.settings.resource.manifest must be a valid yaml"),
    Case("resource-unknown-action", "TestInvalidResourceWorkflow", """
        entrypoint: settings
        templates:
        - name: settings
          resource:
            action: upsert
            manifest: "{apiVersion: v1, kind: ConfigMap, metadata: {name: qc-settings}}"
        """, "templates.settings.resource.action must be one of: get, create, apply, delete, replace, patch"),
    Case("pod-gc-unknown-strategy", "TestIncorrectPodGCStrategy", """
        entrypoint: qc
        podGC: {strategy: WhenDone}
        templates:
        - name: qc
          container: {image: fastqc}
        """, "podGC.strategy unknown strategy 'WhenDone'"),
    Case("pod-gc-bad-selector", "TestInvalidPodGCLabelSelector", """
        entrypoint: qc
        podGC:
          labelSelector:
            matchExpressions: [{key: stage, operator: Equals, values: [qc]}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, 'podGC.labelSelector invalid: "Equals" is not a valid label selector operator'),
    Case("resource-from-inputs", "TestAllowPlaceholderInVariableTakenFromInputs", """
        entrypoint: main
        arguments:
          parameters:
          - name: config
            value: "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}"
        templates:
        - name: apply
          inputs:
            parameters: [{name: action}, {name: manifest}]
          resource: {action: "{{inputs.parameters.action}}", manifest: "{{inputs.parameters.manifest}}"}
        - name: main
          inputs:
            parameters: [{name: config}]
          steps:
          - - name: apply-all
              template: apply
              arguments:
                parameters: [{name: action, value: apply}, {name: manifest, value: "{{item}}"}]
              withItems: ["{{inputs.parameters.config}}"]
        """, None),
    Case("global-output-named-at-run-time", "TestRuntimeResolutionOfVariableNames", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: publish
              template: publish
              arguments:
                parameters: [{name: key, value: depth}, {name: value, value: "30"}]
          - - name: show
              template: show
              arguments:
                parameters: [{name: text, value: "{{workflow.outputs.parameters.depth}}"}]
        - name: publish
          inputs:
            parameters: [{name: key}, {name: value}]
          container: {image: debian:bookworm-slim}
          outputs:
            parameters:
            - name: out
              value: "{{inputs.parameters.value}}"
              globalName: "{{inputs.parameters.key}}"
        - name: show
          inputs:
            parameters: [{name: text}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.text}}"]}
        """, None),
    Case("item-map-fields", "TestStepWithItemParam", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {name: plain, template: hello}
            - name: per-sample
              template: fastqc
              arguments:
                parameters: [{name: r1, value: "{{item.r1}}"}, {name: r2, value: "{{item.r2}}"}]
              withItems:
              - {r1: S1_R1.fq.gz, r2: S1_R2.fq.gz}
              - {r1: S2_R1.fq.gz, r2: S2_R2.fq.gz}
        - name: fastqc
          inputs:
            parameters: [{name: r1}, {name: r2}]
          container: {image: fastqc, args: ["{{inputs.parameters.r1}}", "{{inputs.parameters.r2}}"]}
        - name: hello
          container: {image: debian:bookworm-slim}
        """, None),
    Case("metric-name", "TestInvalidMetricName", """
        entrypoint: qc
        templates:
        - name: qc
          metrics:
            prometheus:
            - {name: reads.total, help: reads seen, gauge: {value: "1"}}
          container: {image: fastqc}
        """, "templates.qc metric name 'reads.total' is invalid. Metric names must contain alphanumeric characters or '_'"),
    Case("metric-label", "TestInvalidMetricLabelName", """
        entrypoint: qc
        templates:
        - name: qc
          metrics:
            prometheus:
            - name: reads_total
              help: reads seen
              labels: [{key: sample.id, value: S1}]
              gauge: {value: "1"}
          container: {image: fastqc}
        """, "metric label 'sample.id' is invalid: keys may only contain alphanumeric characters or '_'"),
    Case("metric-help", "TestInvalidMetricHelp", """
        entrypoint: qc
        templates:
        - name: qc
          metrics:
            prometheus:
            - {name: reads_total, gauge: {value: "1"}}
          container: {image: fastqc}
        """, "templates.qc metric 'reads_total' must contain a help string under 'help: ' field"),
    Case("metric-realtime-resources", "TestInvalidMetricGauge", """
        entrypoint: qc
        templates:
        - name: qc
          metrics:
            prometheus:
            - name: cpu_used
              help: cpu seconds
              gauge: {realtime: true, value: "{{resourcesDuration.cpu}}"}
          container: {image: fastqc}
        """, "templates.qc metric 'cpu_used' error: 'resourcesDuration.*' metrics cannot be used in real-time"),
    Case("metric-gauge-without-value", "TestInvalidNoValueMetricGauge", """
        entrypoint: qc
        templates:
        - name: qc
          metrics:
            prometheus:
            - {name: cpu_used, help: cpu seconds, gauge: {realtime: false}}
          container: {image: fastqc}
        """, "templates.qc metric 'cpu_used' error: missing gauge.value"),
    Case("workflow-globals", "TestWorkflowGlobalVariables", """
        priority: 1
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: show
              template: show
              arguments:
                parameters:
                - {name: a, value: "{{workflow.name}}"}
                - {name: b, value: "{{workflow.namespace}}"}
                - {name: c, value: "{{workflow.serviceAccountName}}"}
                - {name: d, value: "{{workflow.uid}}"}
                - {name: e, value: "{{workflow.priority}}"}
                - {name: f, value: "{{workflow.duration}}"}
        - name: show
          inputs:
            parameters: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}, {name: f}]
          container: {image: debian:bookworm-slim}
        """, None),
    Case("container-without-image", "TestInvalidWfNoImageField", """
        entrypoint: qc
        templates:
        - name: qc
          container: {command: [fastqc]}
        """, "templates.qc.container.image may not be empty"),
    Case("script-without-image", "TestInvalidWfNoImageFieldScript", """
        entrypoint: qc
        templates:
        - name: qc
          script: {command: [bash], source: "fastqc --version"}
        """, "templates.qc.script.image may not be empty"),
    Case("script-image-from-defaults", "TestValidWfImageScriptInTemplateDefault", """
        entrypoint: qc
        templateDefaults:
          script: {image: fastqc}
        templates:
        - name: qc
          script: {command: [bash], source: "fastqc --version"}
        """, None),
    Case("enum-empty", "TestWorkflowTemplateWithEmptyEnumList", """
        entrypoint: qc
        arguments:
          parameters: [{name: aligner, value: bwa, enum: []}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, "spec.arguments.aligner.enum should contain at least one value"),
    Case("enum-value-not-listed", "TestWorkflowTemplateWithArgumentValueNotFromEnumList", """
        entrypoint: qc
        arguments:
          parameters: [{name: aligner, value: bowtie2, enum: [bwa, bwa-mem2]}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, "spec.arguments.aligner.value should be present in spec.arguments.aligner.enum list"),
    Case("enum-without-value-at-submission", "TestWorkflowTemplateWithEnumValueWithoutValue", """
        entrypoint: qc
        arguments:
          parameters: [{name: aligner, enum: [bwa, bwa-mem2]}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, "spec.arguments.aligner.value or spec.arguments.aligner.valueFrom is required"),
    Case("enum-without-value-when-linting", "TestWorkflowTemplateWithEnumValueWithoutValue", """
        entrypoint: qc
        arguments:
          parameters: [{name: aligner, enum: [bwa, bwa-mem2]}]
        templates:
        - name: qc
          container: {image: fastqc}
        """, None, lint_mode=True),
    Case("name-longer-than-63", "TestMaxLengthName", """
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          name: fastqc-to-bwa-for-a-sample-whose-name-is-really-rather-long-indeed
        spec:
          entrypoint: qc
          templates:
          - name: qc
            container: {image: fastqc}
        """, 'workflow name "fastqc-to-bwa-for-a-sample-whose-name-is-really-rather-long-indeed" must not be more '
             "than 63 characters long (currently 66)"),
    Case("container-set-unknown-dependency", "TestInvalidContainerSetDependencyNotFound", """
        entrypoint: main
        templates:
        - name: main
          containerSet:
            containers:
            - {name: index, image: bwa}
            - {name: align, image: bwa, dependencies: [fetch]}
        """, "templates.main.containerSet.containers.align dependency 'fetch' not defined"),
    Case("container-set-output-without-main", "TestInvalidContainerSetNoMainContainer", """
        entrypoint: main
        templates:
        - name: main
          outputs:
            parameters:
            - name: total
              valueFrom: {path: /workspace/total}
          containerSet:
            containers:
            - {name: count, image: seqkit}
        """, 'templates.main.containerSet.containers must have a container named "main" for input or output'),
    Case("started-at-variables", "TestValidateStartedATVariable", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {name: align, template: work}
          - - name: report
              template: show
              arguments:
                parameters:
                - {name: started, value: "{{steps.align.startedAt}}"}
                - {name: finished, value: "{{steps.align.finishedAt}}"}
                - {name: id, value: "{{steps.align.id}}"}
        - name: work
          container: {image: bwa}
        - name: show
          inputs:
            parameters: [{name: started}, {name: finished}, {name: id}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.started}}"]}
        """, None),
    Case("workflow-argument-from-configmap", "TestTemplateReferenceWorkflowConfigMapRefArgument", """
        entrypoint: qc
        arguments:
          parameters:
          - name: threads
            valueFrom:
              configMapKeyRef: {name: pipeline-settings, key: threads}
        templates:
        - name: qc
          inputs:
            parameters: [{name: threads}]
          container: {image: fastqc, args: ["-t", "{{inputs.parameters.threads}}"]}
        """, None),
    Case("aggregated-script-outputs", "TestStepsOutputParametersForScript", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: count
              template: count
              arguments:
                parameters: [{name: chunk, value: "{{item}}"}]
              withItems: [1, 2, 3]
          - - name: recount
              template: count
              arguments:
                parameters: [{name: chunk, value: "{{item.chunk}}"}]
              withParam: "{{steps.count.outputs.parameters}}"
        - name: count
          inputs:
            parameters: [{name: chunk}]
          script:
            image: debian:bookworm-slim
            command: [bash]
            source: echo {{inputs.parameters.chunk}} > /tmp/chunk
          outputs:
            parameters:
            - name: chunk
              valueFrom: {path: /tmp/chunk}
        """, None),
    Case("labels-and-annotations-json", "TestResolveAnnotationsAndLabelsJSson", """
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          generateName: lint-case-
          labels: {bioinfra.io/pipeline: fastqc-to-bwa}
          annotations: {bioinfra.io/run-id: preview}
        spec:
          entrypoint: qc
          templates:
          - name: qc
            container: {image: fastqc, args: ["{{workflow.annotations}} {{workflow.labels}} {{workflow.labels.bioinfra.io/pipeline}}"]}
        """, None),
    Case("init-container-without-name", "TestInitContainerHasName", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: stage, template: stage}
        - name: stage
          retryStrategy: {retryPolicy: Always}
          initContainers:
          - {image: debian:bookworm-slim, command: [sleep, "1"]}
          container: {image: rclone}
        """, "templates.main.tasks.stage initContainers must all have container name"),
    Case("node-name-variable", "TestNodeNameParameterInterpoliates", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: part-one, template: middle}
        - name: middle
          steps:
          - - {name: part-two, template: inner}
        - name: inner
          dag:
            tasks:
            - {name: part-three, template: leaf}
        - name: leaf
          container: {image: debian:bookworm-slim, args: ["{{ node.name }}"]}
        """, None),
    Case("spaced-unknown-variable", "TestShouldCheckValidationToSpacedParameters", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc, args: ["{{  workflow.nosuchthing  }}"]}
        """, "templates.qc: failed to resolve {{  workflow.nosuchthing  }}"),
    Case("parameterised-global-artifact-in-exit-handler", "TestParameterizedGlobalArtifactsInExitHandler", """
        entrypoint: main
        onExit: report
        arguments:
          parameters: [{name: sample, value: S1}]
        templates:
        - name: main
          container: {image: bwa}
          outputs:
            artifacts:
            - {name: bam, path: /out/sample.bam, globalName: "bam-{{workflow.parameters.sample}}"}
        - name: report
          container: {image: debian:bookworm-slim, args: ["{{workflow.outputs.artifacts.bam-S1}}"]}
        """, None),
    Case("unknown-global-artifact-in-exit-handler", "TestWorkflowWithoutParameterizedArtifactsFails", """
        entrypoint: main
        onExit: report
        templates:
        - name: main
          container: {image: bwa}
          outputs:
            artifacts: [{name: bam, path: /out/sample.bam, globalName: sample-bam}]
        - name: report
          container: {image: debian:bookworm-slim, args: ["{{workflow.outputs.artifacts.nonexistent}}"]}
        """, "templates.report: failed to resolve {{workflow.outputs.artifacts.nonexistent}}"),
]

# ----- cases derived from validate.go's rules where validate_test.go has no test -----------------

DAG_QC = """
        - name: fastqc
          container: {image: fastqc}
"""

FROM_VALIDATE_GO = [
    Case("continue-on-with-depends", "validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc, continueOn: {failed: true}}
            - {name: report, template: fastqc, depends: qc}
        """ + DAG_QC, "templates.main cannot use 'continueOn' when using 'depends'. "
                      "Instead use 'dep-task.Failed'/'dep-task.Errored'"),
    Case("continue-on-with-dependencies", "validateDAG / expandDependency", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc, continueOn: {failed: true}}
            - {name: report, template: fastqc, dependencies: [qc]}
        """ + DAG_QC, None),
    Case("depends-and-dependencies", "validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: align, template: fastqc, depends: qc}
            - {name: report, template: fastqc, dependencies: [align]}
        """ + DAG_QC, "templates.main cannot use both 'depends' and 'dependencies' in the same DAG template"),
    Case("digit-first-task-name", "validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: 1st-qc, template: fastqc}
            - {name: report, template: fastqc, depends: 1st-qc}
        """ + DAG_QC, "templates.main.tasks.1st-qc name cannot begin with a digit when using either 'depends' or "
                      "'dependencies'"),
    Case("digit-first-task-name-without-dependencies", "validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: 1st-qc, template: fastqc}
        """ + DAG_QC, None),
    Case("unknown-dependency", "sortDAGTasks / sorting.TopologicalSorting", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: report, template: fastqc, depends: "qc.Succeeded"}
        """ + DAG_QC, "templates.main sorting failed: invalid dependency qc"),
    Case("dependency-cycle", "sortDAGTasks / verifyNoCycles", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: a, template: fastqc, depends: c}
            - {name: b, template: fastqc, depends: a}
            - {name: c, template: fastqc, depends: b}
        """ + DAG_QC, "templates.main sorting failed: graph with cycle"),
    Case("duplicate-task", "sortDAGTasks", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: qc, template: fastqc}
        """ + DAG_QC, "templates.main sorting failed: duplicated nodeName qc"),
    Case("task-result-misspelt", "common.ValidateTaskResults", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: report, template: fastqc, depends: "qc.Succeded || qc.Failed"}
        """ + DAG_QC, "templates.main.tasks.report task result 'Succeded' for task 'qc' is invalid"),
    Case("items-condition-without-items", "validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: report, template: fastqc, depends: "qc.AnySucceeded"}
        """ + DAG_QC, "templates.main.tasks.report dependency 'qc' uses an items-based condition such as "
                      ".AnySucceeded or .AllFailed but does not contain any items"),
    Case("status-of-a-task-not-upstream", "validateDAG (ancestry scope)", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - name: report
              template: fastqc
              when: "{{tasks.qc.status}} == Succeeded"
        """ + DAG_QC, "templates.main.tasks.report failed to resolve {{tasks.qc.status}}"),
    Case("status-of-an-upstream-task", "validateDAG (ancestry scope)", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - name: report
              template: fastqc
              depends: qc
              when: "{{tasks.qc.status}} == Succeeded"
        """ + DAG_QC, None),
    Case("argument-from-task-not-upstream", "validateDAGTaskArgumentDependency", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: count, template: count}
            - name: report
              template: show
              arguments:
                parameters: [{name: total, value: "{{tasks.count.outputs.result}}"}]
        - name: count
          script: {image: debian:bookworm-slim, command: [bash], source: "echo 3"}
        - name: show
          inputs:
            parameters: [{name: total}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.total}}"]}
        """, "templates.main.tasks.report missing dependency 'count' for parameter 'total'"),
    Case("task-template-undefined", "validateTemplateHolder", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc-typo}
        """ + DAG_QC, "templates.main.tasks.qc template name 'fastqc-typo' undefined"),
    Case("entrypoint-undefined", "ValidateWorkflow / validateTemplateHolder", """
        entrypoint: mian
        templates:
        - name: main
          container: {image: fastqc}
        """, "template name 'mian' undefined"),
    Case("entrypoint-missing", "ValidateWorkflow", """
        templates:
        - name: main
          container: {image: fastqc}
        """, "spec.entrypoint is required"),
    Case("on-exit-undefined", "ValidateWorkflow (OnExit)", """
        entrypoint: main
        onExit: cleanup
        templates:
        - name: main
          container: {image: fastqc}
        """, "template name 'cleanup' undefined"),
    Case("retry-policy-unknown", "validateTemplateHolder (retryStrategy)", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: align, template: bwa}
        - name: bwa
          retryStrategy: {limit: 2, retryPolicy: OnPreemption}
          container: {image: bwa}
        """, "templates.main.tasks.align OnPreemption is not a valid RetryPolicy"),
    Case("retry-policy-transient", "validateTemplateHolder (retryStrategy)", """
        entrypoint: bwa
        templates:
        - name: bwa
          retryStrategy: {limit: 2, retryPolicy: OnTransientError, backoff: {duration: 10s, factor: 2}}
          container: {image: bwa, args: ["attempt {{retries}}"]}
        """, None),
    Case("dag-without-tasks", "validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag: {tasks: []}
        """, "templates.main must have at least one task"),
    Case("dag-target-undefined", "validateDAGTargets", """
        entrypoint: main
        templates:
        - name: main
          dag:
            target: report
            tasks:
            - {name: qc, template: fastqc}
        """ + DAG_QC, "templates.main.targets: target 'report' is not defined"),
    Case("items-and-param", "addItemsToScope", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: qc
              template: fastqc
              withItems: [S1, S2]
              withParam: '["S3"]'
        """ + DAG_QC, "templates.main.tasks.qc only one of withItems, withParam, withSequence can be specified"),
    Case("item-field-without-loop", "resolveAllVariables", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: qc
              template: show
              arguments:
                parameters: [{name: sample, value: "{{item.sample}}"}]
        - name: show
          inputs:
            parameters: [{name: sample}]
          container: {image: debian:bookworm-slim}
        """, "templates.main.tasks.qc failed to resolve {{item.sample}}"),
    Case("bare-item-without-loop", "resolveAllVariables (common.GlobalVarValidWorkflowVariablePrefix)", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: qc
              template: show
              arguments:
                parameters: [{name: sample, value: "{{item}}"}]
        - name: show
          inputs:
            parameters: [{name: sample}]
          container: {image: debian:bookworm-slim}
        """, None),
    Case("workflow-parameter-undeclared", "resolveAllVariables", """
        entrypoint: qc
        arguments:
          parameters: [{name: sample, value: S1}]
        templates:
        - name: qc
          container: {image: fastqc, args: ["{{workflow.parameters.sampel}}"]}
        """, "templates.qc: failed to resolve {{workflow.parameters.sampel}}"),
    Case("deadline-on-dag", "validateNonLeaf", """
        entrypoint: main
        templates:
        - name: main
          activeDeadlineSeconds: 3600
          dag:
            tasks:
            - {name: qc, template: fastqc}
        """ + DAG_QC, "templates.main.activeDeadlineSeconds is only valid for leaf templates"),
    Case("deadline-from-input", "validateLeaf (intstr.IsValidIntOrArgoVariable)", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters: [{name: seconds, value: "600"}]
          activeDeadlineSeconds: "{{inputs.parameters.seconds}}"
          container: {image: fastqc}
        """, None),
    Case("no-template-kind", "validateTemplateType", """
        entrypoint: qc
        templates:
        - name: qc
          inputs:
            parameters: [{name: reads, value: r1.fq}]
        """, f"templates.qc template type unspecified. {KINDS}"),
    Case("task-name-129-characters", "isValidWorkflowFieldName (workflowFieldMaxLength)", f"""
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {{name: {"q" * 129}, template: fastqc}}
        """ + DAG_QC, f"templates.main.tasks[0].name: '{'q' * 129}' is invalid: must be no more than 128 characters"),
    Case("task-name-with-capitals", "isValidWorkflowFieldName (workflowFieldNameFmt)", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: FastQC-R1, template: fastqc}
        """ + DAG_QC, None),
    Case("timeout-on-dag", "validateTemplate (timeout)", """
        entrypoint: main
        templates:
        - name: main
          timeout: 1h
          dag:
            tasks:
            - {name: qc, template: fastqc}
        """ + DAG_QC, "DAG template doesn't support timeout field."),
    Case("timeout-without-unit", "validateTemplate (timeout)", """
        entrypoint: qc
        templates:
        - name: qc
          timeout: "600"
          container: {image: fastqc}
        """, "qc has invalid duration format in timeout."),
    Case("hook-without-expression", "validateHooks", """
        entrypoint: qc
        hooks:
          running: {template: qc}
        templates:
        - name: qc
          container: {image: fastqc}
        """, "hooks.running Expression required"),
    Case("unreachable-template-checked", "ValidateWorkflow (every template)", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
        - name: spare
          container: {image: "bwa:{{inputs.parameters.version}}"}
        """, "templates.spare templates.spare: failed to resolve {{inputs.parameters.version}}"),
    Case("missing-task-argument", "validateDAG / common.ProcessArgs", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: align, template: bwa}
        - name: bwa
          inputs:
            parameters: [{name: reads}]
          container: {image: bwa, args: ["{{inputs.parameters.reads}}"]}
        """, "templates.main.tasks.align templates.bwa inputs.parameters.reads was not supplied"),
    Case("leaf-output-artifact-without-path", "validateOutputs / v1alpha1 Artifact.CleanPath", """
        entrypoint: qc
        templates:
        - name: qc
          container: {image: fastqc}
          outputs:
            artifacts: [{name: report}]
        """, "error in templates.qc.outputs.artifacts.report: Artifact 'report' did not specify a path"),
    Case("input-artifact-path-climbs-out", "validateInputs / v1alpha1 Artifact.CleanPath", """
        entrypoint: qc
        arguments:
          parameters: [{name: sub, value: reads}]
        templates:
        - name: qc
          inputs:
            artifacts:
            - name: reads
              path: /work/in/../../etc/reads.fq
              http: {url: "https://example.org/r1.fq"}
          container: {image: fastqc}
        """, "error in templates.qc.inputs.artifacts.reads: Artifact 'reads' attempted to use a path containing "
             "'..'. Directory traversal is not permitted"),
    Case("container-set-cycle", "v1alpha1 ContainerSetTemplate.Validate / validateNoCycles", """
        entrypoint: main
        templates:
        - name: main
          containerSet:
            containers:
            - {name: index, image: bwa, dependencies: [align]}
            - {name: align, image: bwa, dependencies: [index]}
        """, "templates.main.containerSet.containers dependency cycle detected: index->align->index"),
    Case("task-output-result-anywhere", "validateDAG (addOutputsToScope)", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: count, template: count}
            - {name: report, template: count, when: "{{tasks.count.outputs.result}} > 0"}
        - name: count
          script: {image: debian:bookworm-slim, command: [bash], source: "echo 3"}
        """, None),
]

# ----- cases derived from validate_dag_test.go (v3.7.18, in argoproj/argo-workflows; not in ../shared) --

ECHO = """
        - name: echo
          inputs:
            parameters: [{name: text}]
          container: {image: debian:bookworm-slim, args: ["{{inputs.parameters.text}}"]}
          outputs:
            parameters:
            - name: lines
              valueFrom: {path: /tmp/lines}
"""

FROM_GO_DAG_TESTS = [
    Case("dag-cycle-through-dependencies", "TestDAGCycle", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: index, template: fastqc, dependencies: [report]}
            - {name: align, template: fastqc, dependencies: [index]}
            - {name: report, template: fastqc, dependencies: [index]}
        """ + DAG_QC, "templates.main sorting failed: graph with cycle", "cycle"),
    Case("dag-any-succeeded-without-loop", "TestAnyWithoutExpandingTask", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: report, template: fastqc, depends: qc.AnySucceeded}
        """ + DAG_QC, "templates.main.tasks.report dependency 'qc' uses an items-based condition such as "
                      ".AnySucceeded or .AllFailed but does not contain any items", "does not contain any items"),
    Case("dag-undefined-template", "TestDAGUndefinedTemplate", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: multiqc}
        """, "templates.main.tasks.qc template name 'multiqc' undefined", "undefined"),
    Case("dag-unknown-output-of-upstream", "TestDAGVariableResolution", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: first
              template: echo
              arguments: {parameters: [{name: text, value: hello}]}
            - name: second
              template: echo
              dependencies: [first]
              arguments: {parameters: [{name: text, value: "{{tasks.first.outputs.parameters.words}}"}]}
        """ + ECHO, "templates.main.tasks.second failed to resolve {{tasks.first.outputs.parameters.words}}",
         "failed to resolve {{tasks.first.outputs.parameters.words}}"),
    Case("dag-upstream-output-and-node-fields", "TestDAGVariableResolution", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: first
              template: echo
              arguments: {parameters: [{name: text, value: hello}]}
            - name: second
              template: echo
              dependencies: [first]
              arguments: {parameters: [{name: text, value: "{{tasks.first.outputs.parameters.lines}} {{tasks.first.startedAt}} {{tasks.first.finishedAt}} {{tasks.first.id}} {{tasks.first.hostNodeName}}"}]}
            - name: third
              template: echo
              dependencies: [second]
              arguments: {parameters: [{name: text, value: "{{tasks.first.outputs.parameters.lines}}"}]}
        """ + ECHO, None),
    Case("dag-argument-from-sibling", "TestDAGVariableResolution", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: first
              template: echo
              arguments: {parameters: [{name: text, value: hello}]}
            - name: left
              template: echo
              dependencies: [first]
              arguments: {parameters: [{name: text, value: "{{tasks.first.outputs.parameters.lines}}"}]}
            - name: right
              template: echo
              dependencies: [first]
              arguments: {parameters: [{name: text, value: "{{tasks.left.outputs.parameters.lines}}"}]}
        """ + ECHO, "templates.main.tasks.right missing dependency 'left' for parameter 'text'"),
    Case("dag-global-output-listed-later", "TestDAGVariableResolution", """
        entrypoint: main
        templates:
        - name: publish
          container: {image: debian:bookworm-slim}
          outputs:
            parameters:
            - name: depth
              valueFrom: {path: /tmp/depth}
              globalName: mean-depth
        - name: use
          container: {image: debian:bookworm-slim, args: ["{{workflow.outputs.parameters.mean-depth}}"]}
        - name: main
          dag:
            tasks:
            - {name: second, template: use, dependencies: [first]}
            - {name: first, template: publish}
        """, None),
    Case("dag-artifact-from-upstream", "TestDAGArtifactResolution", """
        entrypoint: main
        templates:
        - name: index
          container: {image: bwa}
          outputs:
            artifacts: [{name: bwt, path: /ref/index}]
        - name: align
          inputs:
            artifacts: [{name: index, path: /ref/index}]
          container: {image: bwa}
        - name: main
          dag:
            tasks:
            - {name: build, template: index}
            - name: map
              template: align
              dependencies: [build]
              arguments:
                artifacts: [{name: index, from: "{{tasks.build.outputs.artifacts.bwt}}"}]
        """, None),
    Case("dag-status-of-downstream", "TestDAGStatusReference", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: first
              template: echo
              continueOn: {failed: true}
              arguments: {parameters: [{name: text, value: "{{tasks.second.status}}"}]}
            - name: second
              template: echo
              dependencies: [first]
              arguments: {parameters: [{name: text, value: "{{tasks.first.status}}"}]}
        """ + ECHO, "templates.main.tasks.first failed to resolve {{tasks.second.status}}",
         "failed to resolve {{tasks.second.status}}"),
    Case("dag-status-of-ancestor-chain", "TestDAGStatusReference", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: a
              template: echo
              continueOn: {failed: true}
              arguments: {parameters: [{name: text, value: hi}]}
            - {name: b, template: echo, dependencies: [a], arguments: {parameters: [{name: text, value: "{{tasks.a.status}}"}]}}
            - {name: c, template: echo, dependencies: [b], arguments: {parameters: [{name: text, value: "{{tasks.a.status}} {{tasks.b.status}}"}]}}
        """ + ECHO, None),
    Case("dag-status-of-other-branch", "TestDAGStatusReference", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: a, template: echo, arguments: {parameters: [{name: text, value: hi}]}}
            - {name: b, template: echo, dependencies: [a], arguments: {parameters: [{name: text, value: "{{tasks.a.status}}"}]}}
            - {name: d, template: echo, dependencies: [a], arguments: {parameters: [{name: text, value: "{{tasks.a.status}}"}]}}
            - {name: e, template: echo, dependencies: [d], arguments: {parameters: [{name: text, value: "{{tasks.b.status}}"}]}}
        """ + ECHO, "templates.main.tasks.e failed to resolve {{tasks.b.status}}", "failed to resolve {{tasks.b.status}}"),
    Case("dag-target-undefined-among-tasks", "TestDAGNonExistantTarget", """
        entrypoint: main
        templates:
        - name: main
          dag:
            target: multiqc
            tasks:
            - {name: qc, template: fastqc}
            - {name: align, template: fastqc, dependencies: [qc]}
        """ + DAG_QC, "templates.main.targets: target 'multiqc' is not defined", "is not defined"),
    Case("dag-target-from-workflow-parameter", "TestDAGTargetSubstitution", """
        entrypoint: main
        arguments:
          parameters: [{name: stop-at, value: align}]
        templates:
        - name: main
          dag:
            target: "{{workflow.parameters.stop-at}}"
            tasks:
            - {name: qc, template: fastqc}
            - {name: align, template: fastqc, dependencies: [qc]}
        """ + DAG_QC, None),
    Case("dag-target-from-undeclared-input", "TestDAGTargetMissingInputParam", """
        entrypoint: main
        templates:
        - name: main
          dag:
            target: "{{inputs.parameters.stop-at}}"
            tasks:
            - {name: qc, template: fastqc}
        """ + DAG_QC, "templates.main.targets failed to resolve {{inputs.parameters.stop-at}}"),
    Case("dag-depends-next-to-dependencies", "TestDependsAndDependencies", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: align, template: fastqc, dependencies: [qc]}
            - {name: report, template: fastqc, depends: align}
        """ + DAG_QC, "templates.main cannot use both 'depends' and 'dependencies' in the same DAG template"),
    Case("dag-continue-on-elsewhere-in-a-depends-dag", "TestDependsAndContinueOn", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: align, template: fastqc, continueOn: {failed: true}}
            - {name: report, template: fastqc, depends: align}
        """ + DAG_QC, "templates.main cannot use 'continueOn' when using 'depends'. "
                      "Instead use 'dep-task.Failed'/'dep-task.Errored'"),
    Case("dag-digit-name-with-dependencies", "TestDAGDependenciesDigit", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: 2nd-qc, template: fastqc, dependencies: [qc]}
        """ + DAG_QC, "templates.main.tasks.2nd-qc name cannot begin with a digit when using either 'depends' or "
                      "'dependencies'"),
    # validateDAG applies the digit rule to a task that has `dependencies` itself (or to every task
    # once any task uses `depends`): a digit-named task only depended upon is admitted.
    Case("dag-digit-name-only-depended-upon", "TestDAGDependenciesDigit / validateDAG", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: 2nd, template: fastqc}
            - {name: report, template: fastqc, dependencies: [2nd]}
        """ + DAG_QC, None),
    Case("dag-aggregated-outputs-of-a-fan-out", "TestDAGOutputsResolveTaskAggregatedOutputs", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - name: plan
              template: split
              arguments: {parameters: [{name: samples, value: "[1, 2]"}]}
            - name: per-chunk
              template: chunk
              depends: plan
              arguments:
                parameters:
                - {name: chunk, value: "{{item}}"}
                - {name: samples, value: "{{tasks.plan.outputs.parameters.chunks}}"}
              withParam: "{{tasks.plan.outputs.parameters.chunks}}"
        - name: chunk
          inputs:
            parameters: [{name: samples}, {name: chunk}]
          outputs:
            parameters:
            - name: bams
              valueFrom: {parameter: "{{tasks.align.outputs.parameters}}"}
          dag:
            tasks:
            - name: plan
              template: split
              arguments: {parameters: [{name: samples, value: "{{inputs.parameters.samples}}"}]}
            - name: align
              template: align
              depends: plan
              arguments: {parameters: [{name: sample, value: "{{item}}"}]}
              withParam: "{{tasks.plan.outputs.parameters.chunks}}"
        - name: split
          inputs:
            parameters: [{name: samples}]
          container: {image: debian:bookworm-slim}
          outputs:
            parameters:
            - name: chunks
              valueFrom: {path: /tmp/chunks}
        - name: align
          inputs:
            parameters: [{name: sample}]
          container: {image: bwa}
          outputs:
            parameters:
            - name: bam
              valueFrom: {path: /tmp/bam}
        """, None),
    Case("dag-argument-value-from-parameter", "TestDAGMissingParamValueInTask", """
        entrypoint: main
        arguments:
          parameters: [{name: sample, value: S1}]
        templates:
        - name: show
          inputs:
            parameters: [{name: text}]
          container: {image: debian:bookworm-slim}
        - name: main
          inputs:
            parameters: [{name: sample}]
          dag:
            tasks:
            - name: say
              template: show
              arguments:
                parameters:
                - name: text
                  valueFrom: {parameter: "{{inputs.parameters.sample}}"}
        """, "templates.main.tasks.say.arguments.text.valueFrom only allows: default, configMapKeyRef and supplied"),
    Case("dag-argument-from-configmap", "TestDAGArgParamValueFromConfigMapInTask", """
        entrypoint: main
        templates:
        - name: show
          inputs:
            parameters: [{name: text}]
          container: {image: debian:bookworm-slim}
        - name: main
          dag:
            tasks:
            - name: say
              template: show
              arguments:
                parameters:
                - name: text
                  valueFrom:
                    configMapKeyRef: {name: lab-settings, key: greeting}
                    default: hello
        """, None),
    Case("dag-argument-value-from-path", "TestFailDAGArgParamValueFromPathInTask", """
        entrypoint: main
        templates:
        - name: show
          inputs:
            parameters: [{name: text}]
          container: {image: debian:bookworm-slim}
        - name: main
          dag:
            tasks:
            - name: say
              template: show
              arguments:
                parameters:
                - name: text
                  valueFrom: {path: /tmp/text}
        """, "templates.main.tasks.say.arguments.text.valueFrom only allows: default, configMapKeyRef and supplied"),
]

ALL_CASES = FROM_GO_TESTS + FROM_GO_DAG_TESTS + FROM_VALIDATE_GO


def test_enough_cases_derived_from_argo():
    accepted = [c for c in FROM_GO_TESTS if c.expect is None]
    rejected = [c for c in FROM_GO_TESTS if c.expect is not None]
    assert len(FROM_GO_TESTS) >= 40, (len(accepted), len(rejected))
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES), "case ids must be unique"


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_argo_admission_rule(case: Case):
    problems = argo_problems(case.doc(), lint_mode=case.lint_mode)
    if case.expect is None:
        assert problems == [], f"{case.cite}: Argo accepts this spec"
    else:
        assert problems == [case.expect], f"{case.cite}: Argo refuses this spec with that message"
        assert case.argo_says in problems[0]


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.expect is None], ids=lambda c: c.id)
def test_accepted_cases_are_clean_in_full(case: Case):
    """An accepted spec is accepted by every check: no Kubernetes or schema problem either."""
    problems = [p for p in lint(case.doc(), lint_mode=case.lint_mode) if p.severity == "error"]
    assert problems == []


# ----- beyond the controller: the API server, the schema, notes ---------------------------------

def _minimal(**metadata) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": metadata,
            "spec": {"entrypoint": "qc", "templates": [{"name": "qc", "container": {"image": "fastqc"}}]}}


def test_kubernetes_refuses_an_uppercase_name_before_argo():
    problems = lint(_minimal(name="FastQC-Run"))
    assert [(p.source, p.message.split(":")[0]) for p in problems] == [("kubernetes", "metadata.name")]
    assert "a lowercase RFC 1123 subdomain" in problems[0].message


def test_kubernetes_needs_a_name_or_generate_name():
    assert [p.message for p in lint(_minimal())] == ["metadata.name: Required value: name or generateName is required"]


def test_generate_name_may_end_with_a_dash():
    assert lint(_minimal(generateName="fastqc-to-bwa-")) == []


def test_schema_catches_a_typo_argo_would_drop():
    doc = _minimal(generateName="qc-")
    doc["spec"]["templates"][0]["retryStategy"] = {"limit": 2}
    problems = lint(doc)
    assert [p.source for p in problems] == ["schema"]
    assert "'retryStategy' was unexpected" in problems[0].message
    assert problems[0].message.startswith("spec.templates.0:")
    assert argo_problems(doc) == []  # the controller itself would accept it, without the retries


def test_template_ref_is_a_note_not_a_problem():
    """TestUndefinedTemplateRef: Argo looks the WorkflowTemplate up in the cluster; we cannot."""
    doc = Case("x", "", """
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: call
              templateRef: {name: lab-library, template: fastqc}
        """, None).doc()
    problems = lint(doc, schema=False)
    assert [(p.severity, p.message) for p in problems] == [
        ("note", "templateRef lab-library.fastqc not checked: WorkflowTemplates live in the cluster")]


def test_depends_words_are_task_names():
    """expr would read `or` as an operator, but Argo's taskNameRegex (GetTaskDependencies) reads every
    word as a task first: sorting then fails on the unknown task."""
    doc = Case("x", "", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: report, template: fastqc, depends: "qc.Succeeded or qc.Skipped"}
        """ + DAG_QC, None).doc()
    assert argo_problems(doc) == ["templates.main sorting failed: invalid dependency or"]


@pytest.mark.parametrize("change,warning", [
    ({"parallelism": 0}, "spec.parallelism 0: Argo admits it, but no pod ever starts"),
    ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds 0: Argo admits it, but stops the Workflow"),
], ids=["parallelism-0", "deadline-0"])
def test_admitted_but_cannot_run_is_a_warning(change, warning):
    """Argo's validate.go does not look at spec.parallelism or spec.activeDeadlineSeconds (the
    controller admits 0), but operator.go then never starts a pod / stops the Workflow at once."""
    doc = _minimal(generateName="qc-")
    doc["spec"].update(change)
    problems = lint(doc)
    assert [(p.severity, p.source) for p in problems] == [("warning", "bioinfra")]
    assert problems[0].message.startswith(warning)
    check_workflow(doc)  # warnings never refuse


@pytest.mark.parametrize("depends,accepted", [
    ("qc", True), ("(qc.Succeeded || qc.Skipped) && !index.Failed", True), ("!(qc.Failed||index.Errored)", True),
    ("qc &&", False), ("(qc.Succeeded || index", False), ("qc index", False),
])
def test_depends_that_does_not_parse_is_a_warning(depends, accepted):
    """validate.go only checks the task names and results in `depends` (ValidateTaskResults); a
    malformed expression is admitted and the task ends in Error (dag.go evaluateDependsLogic)."""
    doc = Case("x", "", """
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {name: qc, template: fastqc}
            - {name: index, template: fastqc}
            - {name: report, template: fastqc, depends: "DEPENDS"}
        """.replace("DEPENDS", depends) + DAG_QC, None).doc()
    problems = lint(doc)
    assert [p for p in problems if p.severity == "error"] == []
    warnings = [p.message for p in problems if p.severity == "warning"]
    if accepted:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(f"templates.main.tasks.report depends {depends!r} "
                                                             "is not a valid expression")


def test_check_workflow_raises_with_every_problem():
    doc = FROM_VALIDATE_GO[0].doc()
    with pytest.raises(WorkflowInvalidError) as info:
        check_workflow(doc)
    assert info.value.exit_code == ExitCode.INPUT_INVALID
    assert info.value.problems == [FROM_VALIDATE_GO[0].expect]
    assert info.value.message == "lint-case-: 1 problem; Argo v3.7 would refuse this Workflow"


def test_lint_yaml_names_each_document():
    text = yaml.safe_dump(_minimal(generateName="a-")) + "---\n" + yaml.safe_dump(_minimal(name="B"))
    docs = lint_yaml(text)
    assert [(d.name, len(d.errors)) for d in docs] == [("a-", 0), ("B", 1)]


def test_model_parses_what_the_executor_reads():
    wf = Workflow.parse(FROM_VALIDATE_GO[1].doc())
    main = wf.template("main")
    assert main is not None and main.kind == "dag" and main.type_name == "DAG"
    qc, report = main.dag.tasks
    assert qc.continue_on.failed and not qc.continue_on.error
    assert report.dependencies == ("qc",)
    status = Workflow.parse({"status": {"phase": "Failed", "nodes": {"n1": {
        "displayName": "qc", "type": "Pod", "phase": "Failed", "templateName": "fastqc", "children": ["n2"],
        "message": "Error (exit code 1)", "outputs": {"exitCode": "1", "parameters": [{"name": "n", "value": 3}]}}}}})
    node = status.status.nodes["n1"]
    assert (node.id, node.phase, node.children, node.exit_code) == ("n1", "Failed", ("n2",), "1")
    assert node.outputs.parameter("n").value == "3"  # AnyString, as Argo stores it


# ----- every Workflow the project renders -------------------------------------------------------

GOLDEN = sorted((REPO / "tests" / "golden" / "workflows").glob("*.yaml"))


# Issue #16: the samples and cellprofiler Workflows once put `continueOn` on DAG tasks that use
# `depends`, which Argo v3.7 refuses at submission (validateDAG); they use depends only now.
@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_rendered_workflow_passes_lint(path: Path):
    problems = [p.message for p in lint(yaml.safe_load(path.read_text())) if p.severity == "error"]
    assert problems == []


@pytest.fixture(scope="module")
def every_variant() -> dict[str, str]:
    """Every Workflow the CLI can render (tests/unit/test_no_code_injection.py enumerates them: each
    pipeline on local, onprem, gcp, aws; single sample with and without --qc-gate, --samples,
    cellprofiler; s3:// / gs:// inputs staged in and results staged out)."""
    from tests.unit.test_no_code_injection import VARIANTS

    return VARIANTS


def test_every_variant_the_cli_renders_lints_clean(every_variant: dict[str, str]):
    """Argo v3.7 would admit each of them (before #16, every --samples and cellprofiler Workflow was
    refused: continueOn in a DAG that uses depends)."""
    assert len(every_variant) >= 20
    refused = {name: [p.message for p in lint(yaml.safe_load(text)) if p.severity != "note"]
               for name, text in every_variant.items()}
    assert {name: problems for name, problems in refused.items() if problems} == {}


def test_every_render_lints_first_and_refuses_with_argos_message(monkeypatch):
    """bioinfra.engine.render.render_pipeline, the one place every render and run passes through,
    lints before returning: a template Argo would refuse never reaches a run or a cluster (exit 4)."""
    from bioinfra.engine import render as render_mod
    from bioinfra.errors import WorkflowInvalidError
    from tests import render_engine
    from tests.unit.test_no_code_injection import CONFIGS, SHEET

    real = render_mod.render_text

    def with_continue_on(spec, mode, variables) -> str:
        return real(spec, mode, variables).replace(
            '            withParam: "{{tasks.plan.outputs.parameters.chunks}}"\n',
            '            withParam: "{{tasks.plan.outputs.parameters.chunks}}"\n            continueOn:\n'
            '              failed: true\n', 1)

    monkeypatch.setattr(render_mod, "render_text", with_continue_on)
    with pytest.raises(WorkflowInvalidError) as err:
        render_engine.workflow("fastqc-to-bwa", CONFIGS["local"], "local", SHEET, mode="samples")
    assert err.value.exit_code == 4
    assert err.value.problems == ["templates.main cannot use 'continueOn' when using 'depends'. "
                                  "Instead use 'dep-task.Failed'/'dep-task.Errored'"]


# ----- Argo's own examples ---------------------------------------------------------------------

ARGO_REF = Path(os.environ.get("BIOINFRA_ARGO_REFERENCE", REPO.parent / "shared" / "argo-v3.7.18"))
EXAMPLES = ARGO_REF / "examples"
# examples/validation_test.go skips these three when it checks the examples against the schema.
SCHEMA_SKIPPED_BY_ARGO = {"testvolume.yaml", "simple-parameters-configmap.yaml", "memoize-simple.yaml"}
# hera 7.1's models (which our strict schema is generated from) lack fields Argo v3.7 still accepts:
# the deprecated singular `synchronization.mutex`/`semaphore` and `memoize.cache.configMap.key`.
HERA_SCHEMA_GAPS = {"dag-daemon-retry-strategy.yaml", "fibonacci-seq-conditional-param.yaml",
                    "steps-daemon-retry-strategy.yaml", "synchronization-mutex-tmpl-level-legacy.yaml",
                    "synchronization-mutex-wf-level-legacy.yaml", "synchronization-tmpl-level-legacy.yaml",
                    "synchronization-wf-level-legacy.yaml"}


def _example_workflows() -> list[tuple[str, int, dict]]:
    if not EXAMPLES.is_dir():
        return []
    out = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") == "Workflow":
                out.append((path.name, i, doc))
    return out


EXAMPLE_WORKFLOWS = _example_workflows()
needs_reference = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"Argo v3.7.18 reference not at {ARGO_REF} "
                                     "(CI has ../shared beside the clone; or set BIOINFRA_ARGO_REFERENCE)")


def _example_id(name: str, index: int) -> str:
    return name if index == 0 else f"{name}#{index}"


@needs_reference
@pytest.mark.parametrize("name,index,doc", [
    pytest.param(*e, id=_example_id(e[0], e[1])) for e in EXAMPLE_WORKFLOWS
    if "workflows.argoproj.io/test" in ((e[2].get("metadata") or {}).get("labels") or {})])
def test_examples_argo_runs_to_success_pass_lint(name, index, doc):
    """test/e2e/examples_test.go submits every example labelled workflows.argoproj.io/test and expects
    Succeeded: the controller admitted each one, so must we (rules and schema)."""
    assert [p.message for p in lint(doc) if p.severity == "error"] == []


@needs_reference
def test_every_example_workflow_passes_the_controller_rules():
    """No example Workflow of Argo's is refused by our port of the controller's rules."""
    assert len(EXAMPLE_WORKFLOWS) > 100
    refused = {name: argo_problems(doc) for name, _, doc in EXAMPLE_WORKFLOWS if argo_problems(doc)}
    assert refused == {}
    warned = {name: [p.message for p in lint(doc, schema=False) if p.severity == "warning"]
              for name, _, doc in EXAMPLE_WORKFLOWS}
    assert {k: v for k, v in warned.items() if v} == {}, "no false warnings on Argo's own examples"


@needs_reference
@pytest.mark.parametrize("name,index,doc", [
    pytest.param(*e, id=_example_id(e[0], e[1]), marks=[pytest.mark.xfail(
        strict=True, reason="hera 7.1's models lack this v3.7 field")] if e[0] in HERA_SCHEMA_GAPS else [])
    for e in EXAMPLE_WORKFLOWS if e[0] not in SCHEMA_SKIPPED_BY_ARGO])
def test_examples_pass_the_schema(name, index, doc):
    """examples/validation_test.go: every example is valid against Argo's schema."""
    assert [p.message for p in lint(doc) if p.source == "schema"] == []


VALIDATE_TEST_GO = ARGO_REF / "workflow" / "validate" / "validate_test.go"
# Assertions of validate_test.go this check cannot replay: the spec is changed by Go code between
# two assertions, or the test calls an internal function (sortDAGTasks) rather than validation.
NOT_REPLAYABLE = {("TestVolumeMountArtifactPathCollision", "NoError"), ("TestSortDAGTasksWithDepends", "NoError")}


def _replay_validate_test_go(src: str) -> tuple[list[str], list[str]]:
    """Every `validate(spec)` / `ValidateWorkflow(unmarshalWf(spec))` of Argo's own test file with the
    assertion that follows it, replayed through lint(): (agreements, disagreements)."""
    specs = dict(re.findall(r"^var (\w+) = `\n(.*?)`", src, re.S | re.M))
    specs.update(re.findall(r"\t(\w+) := `\n(.*?)`", src, re.S))
    agree, differ = [], []
    for name, body in re.findall(r"^func (Test\w+)\(t \*testing\.T\) \{\n(.*?)^\}", src, re.S | re.M):
        spec, lint_mode = None, False
        for line in body.splitlines():
            m = re.search(r"(?:validate|unmarshalWf)\((\w+)\)", line)
            if m and m.group(1) in specs:
                spec, lint_mode = specs[m.group(1)], False
            if "ValidateOpts{" in line:
                lint_mode = "ValidateOpts{Lint: true}" in line
            a = re.search(r"require\.(NoError|Error|ErrorContains|EqualError)\(t, err(?:, (.*))?\)", line)
            if not a or spec is None:
                continue
            doc = yaml.safe_load(spec)
            if doc.get("kind", "Workflow") != "Workflow" or (name, a.group(1)) in NOT_REPLAYABLE:
                continue
            doc.setdefault("metadata", {}).setdefault("generateName", "replay-")
            found = lint(doc, schema=False, lint_mode=lint_mode)
            if any(p.severity == "note" for p in found):
                continue  # a templateRef: the WorkflowTemplates the Go test creates are in no cluster here
            errors = [p.message for p in found if p.source == "argo" and p.severity == "error"]
            want = a.group(2) or ""
            want = "is invalid" if want == "invalidErr" else (json.loads(want) if want.startswith('"') else want)
            ok = {"NoError": not errors, "Error": bool(errors), "EqualError": errors == [want],
                  "ErrorContains": bool(errors) and want in errors[0]}[a.group(1)]
            (agree if ok else differ).append(f"{name} {a.group(1)} {want!r}: lint says {errors}")
    return agree, differ


@pytest.mark.skipif(not VALIDATE_TEST_GO.is_file(), reason=f"Argo v3.7.18 reference not at {ARGO_REF}")
def test_argos_own_validate_tests_agree():
    """Conformance: the specs of Argo's validate_test.go, read from the reference at test time (not
    copied), get from lint() the verdict and message Argo's test asserts."""
    agree, differ = _replay_validate_test_go(VALIDATE_TEST_GO.read_text())
    assert differ == []
    assert len(agree) >= 65


# ----- the command ------------------------------------------------------------------------------

def _bioinfra(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from bioinfra.cli import main; main()", *args],
                          input=stdin, capture_output=True, text=True, cwd=REPO, timeout=60)


def test_cli_clean_file_exits_0():
    res = _bioinfra("lint", str(REPO / "tests" / "golden" / "workflows" / "fastqc-to-bwa.local.yaml"))
    assert res.returncode == 0, res.stderr
    assert res.stdout == "✓ fastqc-to-bwa-: no problems (Argo v3.7 rules)\n"


def test_cli_refused_stdin_exits_4_with_argos_message():
    spec = yaml.safe_dump(FROM_VALIDATE_GO[0].doc())
    res = _bioinfra("lint", "-", stdin=spec)
    assert res.returncode == int(ExitCode.INPUT_INVALID)
    assert res.stdout == f"✗ {FROM_VALIDATE_GO[0].expect}\n"
    assert "Argo v3.7 would refuse this Workflow" in res.stderr


def test_cli_warning_does_not_fail():
    doc = _minimal(generateName="qc-")
    doc["spec"]["parallelism"] = 0
    res = _bioinfra("lint", "-", stdin=yaml.safe_dump(doc))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("! spec.parallelism 0: Argo admits it") and lines[1] == "✓ qc-: no problems (Argo v3.7 rules)"


def test_cli_allow_missing_arguments_is_argo_lint():
    spec = yaml.safe_dump(next(c for c in FROM_GO_TESTS if c.id == "spec-argument-open-at-submission").doc())
    assert _bioinfra("lint", "-", stdin=spec).returncode == 4
    assert _bioinfra("lint", "--allow-missing-arguments", "-", stdin=spec).returncode == 0


def test_cli_not_yaml_is_bad_input():
    res = _bioinfra("lint", "-", stdin="spec: [unclosed\n")
    assert res.returncode == 4 and "stdin: not valid YAML" in res.stderr
