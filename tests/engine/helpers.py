"""Small pieces several engine tests share."""
import torch


def char_data(text: str) -> tuple[list[str], torch.Tensor]:
    chars = sorted(set(text))
    return chars, torch.tensor([chars.index(c) for c in text])


def loss_curve(model, data: torch.Tensor, lr: float, steps: int = 60, window: int = 32) -> list[float]:
    """Plain AdamW on random windows: the losses a model reaches on its own, without the trainer."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        ix = torch.randint(len(data) - window - 1, (8, 1), generator=gen) + torch.arange(window)
        _, loss = model(data[ix], data[ix + 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
