"""Rate-distortion benchmark of cdcodec against standard image codecs (`cdcodec bench`).

One module per job, in the order data flows:

- `images`: the test images (a folder, or photographs bundled with scikit-image);
- `codecs`: baseline codec adapters (Pillow, imagecodecs) and their quality sweeps;
- `cdcodec_source`: cdcodec's own operating points (each stage prefix of one encode);
- `points`: the record of one operating point, and wall-clock timing;
- `metrics`: bpp, PSNR, SSIM, MS-SSIM, maximum error of one reconstruction;
- `run`: the loop over images and codecs, checkpoints, reuse, the JSON document;
- `curves`: average curves over images (mean per setting) and reading them at a rate;
- `bdrate`: Bjøntegaard-delta rate (PCHIP or cubic fit);
- `report`: the JSON summary and the Markdown tables printed on stdout;
- `plots`: rate-PSNR, rate-SSIM and rate-MS-SSIM PNGs;
- `command`: the click command `bench_command`.
"""
