"""Analyses: pure functions from spec / model / data to result dataclasses with ``to_dict()``.

Nothing in this package prints, imports typer or imports rich: rendering is ``resnet_cli.render``'s job.
"""
