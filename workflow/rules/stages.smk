# One rule per stage of segbench.pipeline.STAGES: its inputs and code, outputs, params and command.
# (A rule's shell text is evaluated when the job runs, after this loop has moved on: what differs between
# the stages goes through params, which bind each stage now.)


for stage in STAGES:

    rule:
        name:
            stage.name
        input:
            unpack(partial(inputs, stage)),
        output:
            outputs(stage),
        log:
            log_file(stage),
        conda:
            "../envs/segbench.yaml"
        threads: threads(stage)
        resources:
            **resources(stage),
        params:
            command=lambda w, stage=stage: command(stage, w),
            values=lambda w, stage=stage: job_params(stage, view(w), dict(w)),
            entries=lambda w, stage=stage: job_entries(stage, config, dict(w)),
        shell:
            '{params.command} --threads {threads} --params "$SEGBENCH_PARAMS" > {log} 2>&1'
