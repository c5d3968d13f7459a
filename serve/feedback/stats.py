"""What the operator's /stats page shows, computed from the store: accuracy, a confusion picture, corrections."""

import base64
import io
import time

from PIL import Image, ImageDraw, ImageFont

from feedback.entry import MAX_IMAGE_SIZE, NOT_DIGIT, shown
from feedback.store import ACCEPT_RULES

CLASSES = [str(digit) for digit in range(10)] + [NOT_DIGIT]
SHORT_NAMES = {NOT_DIGIT: "X"}  # the picture's axis names "not a digit" X
CELL = 36
MARGIN = 48
LATEST_CORRECTIONS = 24
REVIEW_PAGE = 60  # pending entries shown for review at once, oldest first
THUMBNAIL_HEIGHT = 84


def field_accuracy(rows):
    """[{"day", "model", "entries", "agreed", "disagreed", "accuracy", "other_model"}] from the store's per-day
    counts: how often the server's own reading of the stored drawing is what the visitor said it is."""
    return [{"day": day, "model": model, "entries": entries, "agreed": int(agreed or 0),
             "disagreed": entries - int(agreed or 0), "accuracy": 100 * int(agreed or 0) / entries,
             "other_model": int(other or 0)}
            for day, model, entries, agreed, other in rows]


def confusion_png(rows):
    """The confusion matrix as a PNG: rows what visitors said, columns what the server reads, darker = more."""
    counts = {(label, shown): count for label, shown, count in rows}
    side = MARGIN + CELL * len(CLASSES) + 4
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    for index, name in enumerate(CLASSES):
        text = SHORT_NAMES.get(name, name)
        draw.text((MARGIN + index * CELL + CELL // 2, MARGIN // 2), text, fill=(0, 0, 0), font=font, anchor="mm")
        draw.text((MARGIN // 2, MARGIN + index * CELL + CELL // 2), text, fill=(0, 0, 0), font=font, anchor="mm")
    for row, label in enumerate(CLASSES):
        total = sum(counts.get((label, shown), 0) for shown in CLASSES)
        for column, shown in enumerate(CLASSES):
            count = counts.get((label, shown), 0)
            share = count / total if total else 0
            # Right answers in green, mistakes in red, the shade by the share of that row.
            base = (30, 140, 60) if row == column else (200, 40, 40)
            colour = tuple(round(255 - share * (255 - channel)) for channel in base)
            box = (MARGIN + column * CELL, MARGIN + row * CELL, MARGIN + (column + 1) * CELL, MARGIN + (row + 1) * CELL)
            draw.rectangle(box, fill=colour, outline=(220, 220, 220))
            if count:
                ink = (255, 255, 255) if share > 0.5 else (0, 0, 0)
                draw.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), str(count), fill=ink, font=font, anchor="mm")
    return data_url(encode_png(image))


def describe_confusion(rows):
    """The picture's alternative text: every mistake visitors reported, most frequent first."""
    mistakes = sorted(((count, label, shown) for label, shown, count in rows if label != shown), reverse=True)
    if not mistakes:
        return "No corrections yet."
    return "; ".join(f"{count}x said {label}, the server reads {shown}" for count, label, shown in mistakes)


def thumbnails(entries):
    """Entries as {"image" (data: URL), "width", "id", "label", "shown", "read", "model", "read_model", "review", "when"}."""
    return [{"image": data_url(entry["image"]), "label": entry["label"], "model": entry["model"], "id": entry["id"],
             "read": entry["server_read"], "read_model": entry["read_model"], "review": entry["review"],
             # A number's drawing is as wide as the number pad: its thumbnail keeps the pad's shape.
             "width": THUMBNAIL_HEIGHT * MAX_IMAGE_SIZE[entry["mode"]][0] // MAX_IMAGE_SIZE[entry["mode"]][1],
             "shown": shown(entry["mode"], entry["predicted"], entry["verdict"]),
             "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(entry["received_at"]))}
            for entry in entries]


def encode_png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_url(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page_data(store):
    """Everything /stats renders."""
    confusion = store.confusion()
    return {
        "counts": store.counts(),
        "accuracy": field_accuracy(store.accuracy_by_day()),
        "confusion_image": confusion_png(confusion),
        "confusion_text": describe_confusion(confusion),
        "thumbnail_height": THUMBNAIL_HEIGHT,
        "corrections": thumbnails(store.latest_corrections(LATEST_CORRECTIONS)),
        "pending": thumbnails(store.pending(REVIEW_PAGE)),
        "rule": store.accept_rule(),
        "rules": ACCEPT_RULES,
        "days": store.days(),
        "retention": f"{store.retention_days:g} days" if store.retention_days else "until deleted",
        "store": store.describe(),
    }
