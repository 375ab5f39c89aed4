"""The evaluation loop (analysis/evaluation.py): top-1, top-5 and per-class counts, from a network whose ranking
of the classes is known."""


def test_eval_reports_top5_and_per_class_counts(tmp_path):
    import torch

    from resnet_cli.training import evaluate

    class Fixed(torch.nn.Module):
        """Logits ranking classes label + r, label + r - 1, ... (mod 10) from the top, for an image x = (label, r):
        top-1 right for r = 0 only, top-5 right for r < 5."""

        def forward(self, x):
            n = x.shape[0]
            labels, r = x[:, 0].long(), x[:, 1].long()
            logits = torch.zeros(n, 10)
            for rank in range(10):
                logits[torch.arange(n), (labels + r - rank) % 10] = 10.0 - rank
            return logits

    labels = torch.arange(70) % 10
    data = torch.utils.data.TensorDataset(torch.stack([labels, torch.arange(70) % 7], 1).float(), labels)
    result = evaluate(Fixed(), data, batch_size=16, detailed=True)
    # image i has label i % 10 and r = i % 7: top-1 right where r = 0 (10 images), top-5 where r < 5 (50)
    assert (result.correct, result.top5_correct, result.images) == (10, 50, 70)
    assert result.class_images == [7] * 10
    assert sum(result.class_correct) == 10
    assert result.class_correct == [sum(1 for i in range(70) if i % 10 == c and i % 7 == 0) for c in range(10)]


def _per_class_line(errors, names=None):
    """The table's per-class line for a report whose classes have ``errors`` (4 images each; None: no image)."""
    import io

    from rich.console import Console

    from resnet_cli.analysis.evaluation import EvalReport
    from resnet_cli.render.training import eval_table

    per_class = [{"class": c, "name": names[c] if names else None, "images": 0 if e is None else 4,
                  "correct": 0 if e is None else round(4 * (1 - e)), "error": e} for c, e in enumerate(errors)]
    images = sum(c["images"] for c in per_class)
    correct = sum(c["correct"] for c in per_class)
    report = EvalReport(checkpoint="x.pt", arch="cifar_resnet8", dataset="synthetic", split="test",
                        error=1 - correct / images, accuracy=correct / images, loss=1.0, correct=correct,
                        images=images, device="cpu", inferred_arch=None, key_mappings=[], normalization=None,
                        per_class=per_class)
    out = io.StringIO()
    eval_table(report, Console(file=out, width=1000, highlight=False, emoji=False))
    return next(line for line in out.getvalue().splitlines() if line.startswith("per class"))


def test_the_per_class_line_names_every_class_that_shares_the_worst_error():
    assert _per_class_line([0.25, 1.0, 0.5]) == (
        "per class: error from 25.00% to 100.00% (class 1); every class in --format json")
    assert "(classes 0, 1)" in _per_class_line([1.0, 1.0, 0.25])  # named class 0 alone before
    assert "(class 1, cat)" in _per_class_line([0.0, 0.75, None], names=["dog", "cat", "bird"])
    assert "(classes 0 dog, 2 bird)" in _per_class_line([0.5, 0.25, 0.5], names=["dog", "cat", "bird"])
    # a class with no image has no error: neither the lowest nor the highest
    assert _per_class_line([None, 0.5, 0.75]).startswith("per class: error from 50.00% to 75.00% (class 2)")
    many = _per_class_line([1.0] * 8 + [0.0, 0.5])
    assert "error from 0.00% to 100.00% (classes 0, 1, 2 and 5 more)" in many
