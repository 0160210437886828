"""A literal, slow transcription of the Pascal VOC devkit's detection AP (``VOCevaldet.m`` / ``VOCap``,
as ported to Python in ``voc_eval.py``): plain loops, one detection at a time.

Differences from the devkit, on purpose: boxes are continuous xyxy (no ``+ 1`` in the widths, see
rcnn.evaluation.voc), ties in score keep their given order (a stable sort), and a class without ground
truth gives NaN here (the devkit divides by zero)."""

from __future__ import annotations


def reference_voc_ap(gt, dets, use_07_metric, ovthresh=0.5):
    """gt: {image: [(x1, y1, x2, y2, difficult), ...]}; dets: [(image, score, (x1, y1, x2, y2)), ...]."""
    npos = 0
    R = {}
    for image, objs in gt.items():
        R[image] = {
            "bbox": [o[:4] for o in objs],
            "difficult": [o[4] for o in objs],
            "det": [False] * len(objs),
        }
        for o in objs:
            if not o[4]:
                npos += 1
    order = sorted(range(len(dets)), key=lambda i: -dets[i][1])  # Python's sort is stable
    tp = []
    fp = []
    for d in order:
        image, _, bb = dets[d]
        r = R.get(image, {"bbox": [], "difficult": [], "det": []})
        ovmax = -float("inf")
        jmax = -1
        for j, g in enumerate(r["bbox"]):
            ixmin = max(g[0], bb[0])
            iymin = max(g[1], bb[1])
            ixmax = min(g[2], bb[2])
            iymax = min(g[3], bb[3])
            iw = max(ixmax - ixmin, 0.0)
            ih = max(iymax - iymin, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0]) * (bb[3] - bb[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inters
            ov = inters / uni
            if ov > ovmax:
                ovmax = ov
                jmax = j
        if ovmax > ovthresh:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp.append(1.0)
                    fp.append(0.0)
                    r["det"][jmax] = True
                else:
                    tp.append(0.0)
                    fp.append(1.0)
            else:
                tp.append(0.0)
                fp.append(0.0)
        else:
            tp.append(0.0)
            fp.append(1.0)
    if npos == 0:
        return float("nan")
    rec, prec = [], []
    ctp = cfp = 0.0
    for t, f in zip(tp, fp):
        ctp += t
        cfp += f
        rec.append(ctp / npos)
        prec.append(ctp / max(ctp + cfp, 2.220446049250313e-16))
    if use_07_metric:
        ap = 0.0
        for k in range(11):
            t = k * 0.1  # the devkit's 0:0.1:1 (np.arange(0.0, 1.1, 0.1)): 3 * 0.1 is 0.30000000000000004
            ps = [p for p, r_ in zip(prec, rec) if r_ >= t]
            ap += (max(ps) if ps else 0.0) / 11.0
        return ap
    mrec = [0.0, *rec, 1.0]
    mpre = [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mpre[i]
    return ap
