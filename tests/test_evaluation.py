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
