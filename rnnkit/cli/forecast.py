"""``rnnkit forecast``: train a forecaster on CSV columns and backtest it against baselines."""

from __future__ import annotations

from rnnkit.cli.common import (MODEL_PARAMS, TRAINING_PARAMS, add_command, add_model_options, add_run_options,
                               add_training_options, check_out_dir, echo, fraction, given, guard_model_dir,
                               interrupted, period_arg, positive_int, quantile_levels, task_option)
from rnnkit.cli.messages import for_command
from rnnkit.errors import RnnkitError
from rnnkit.data.series import FILLS

TASK = "rnnkit.tasks.forecast:Forecaster"
FIT = TASK + ".fit"


def register(sub) -> None:
    p = add_command(sub, "forecast", "train a forecaster on a CSV column and backtest it against baselines",
                    "Train a recurrent forecaster of the next --horizon rows. Rows are split in time order\n"
                    "(each series' own rows with --series-column, one global model for all series)\n"
                    "into train | validation | test; scaling uses the training part only. The test part is\n"
                    "backtested (rolling origin) against the naive and seasonal-naive forecasts.\n"
                    "DIR receives the model, metrics.json, backtest.csv (test forecasts vs actual),\n"
                    "predictions.csv (the horizon after the data), forecast.png, training.png, report.html.",
                    "rnnkit forecast sales.csv --column units --horizon 14 --out runs/sales --quantiles 0.1,0.5,0.9\n"
                    "rnnkit forecast traffic.csv --column traffic_volume --covariate temp --future-covariate holiday\n"
                    "    --horizon 24 --out runs/traffic\n"
                    "rnnkit forecast stores.csv --series-column store --column sales --horizon 7 --out runs/stores\n"
                    "rnnkit forecast tourism_monthly.tsf --out runs/tourism   # Monash archive: @horizon, @frequency")
    p.add_argument("csv", metavar="CSV", help="CSV file with a header row; or many series, one per line: a .tsf "
                                              "file of the Monash forecasting archive, or a CSV of one series "
                                              "per row as M4's Monthly-train.csv")
    p.add_argument("--column", action="append", default=None, metavar="NAME",
                   help="series column to forecast (repeat for several; default every numeric column, "
                        "or the (adjusted) close of a price file with open, high and low columns)")
    p.add_argument("--date-column", default=None, metavar="NAME",
                   help="column of date labels (default: one named date/time/..., or a non-numeric first column)")
    p.add_argument("--covariate", action="append", default=None, metavar="COL",
                   help="input column observed in the past only, e.g. weather beside traffic (repeat); "
                        "numbers, or labels such as 'Rain' (one 0/1 input per label, at most 50)")
    p.add_argument("--future-covariate", action="append", default=None, metavar="COL",
                   help="input column known ahead, e.g. a holiday flag or name (repeat; numbers or labels); to "
                        "forecast past the data, end the file with the rows ahead: the date and these columns "
                        "filled, the other cells empty")
    p.add_argument("--series-column", default=None, metavar="ID",
                   help="many series in one long CSV: the column naming each row's series (one global model, "
                        "each series scaled by its own training part)")
    p.add_argument("--calendar", choices=("auto", "on", "off"), default="auto",
                   help="sin/cos hour, weekday and month features from the date column (auto: on with "
                        "--covariate, --future-covariate or --series-column when the date column reads as dates: "
                        "ISO, or one format such as 31/01/2011, Jan 2011 or 1990Q1)")
    task_option(p, "--fill", "fill", FIT, choices=FILLS,
                help="empty cells (also NA, null, '.', #N/A): auto interpolates them and says so; error "
                     "stops; interpolate and ffill also add the rows of missing dates; drop skips the rows")
    p.add_argument("--horizon", type=positive_int, default=None,
                   help="rows to forecast (required, but for a .tsf file whose @horizon gives it, or an M4 "
                        "CSV whose name says its frequency)")
    p.add_argument("--lookback", type=positive_int, default=None,
                   help="rows the network reads (default: 2 periods, or max(2*horizon, 24))")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    add_model_options(p, TASK)
    task_option(p, "--strategy", "strategy", TASK, choices=("auto", "direct", "recursive"),
                help="direct: all horizon steps at once; recursive: one step rolled forward; auto: the one "
                     "(with last-value or seasonal outputs) that forecasts the validation part best")
    p.add_argument("--quantiles", type=quantile_levels, default=None, metavar="Q1,Q2,...",
                   help="train quantile outputs (pinball loss) for prediction bands, e.g. 0.1,0.5,0.9")
    task_option(p, "--period", "period", TASK, type=period_arg,
                help="seasonal period in rows for the seasonal-naive baseline, 'auto' or 'none'")
    task_option(p, "--val-fraction", "val_fraction", FIT, type=fraction,
                help="validation part: rolling origins that choose the strategy and the training steps "
                     "(at least one horizon; shrinks for short series)")
    task_option(p, "--test-fraction", "test_fraction", FIT, type=fraction,
                help="test part, backtested and never trained on (none: the model is refitted on every row "
                     "before forecasting)")
    add_training_options(p, FIT)
    add_run_options(p, TASK, seed_help="seed of weights and data order")
    p.set_defaults(func=cmd_forecast)


def csv_hint(message: str, columns) -> str:
    """The reader's advice in command-line terms (--fill, --date-column, --column)."""
    message = message.replace("pass fill='interpolate', 'ffill' or 'drop'", "pass --fill interpolate, ffill or drop")
    message = message.replace("pass it as date_column", "pass it as --date-column")
    message = message.replace("name the right one as date_column", "name the right one with --date-column")
    if "non-numeric" in message and not columns:
        message += "; choose the series with --column NAME"
    if "repeat the date of the row before" in message or "is before the row above it" in message:
        message += ("; several series in one file (a row per series and date)? --series-column NAME names the "
                    "column that tells them apart, --column the values")
    return message


def cmd_forecast(args) -> int:
    from rnnkit.data.series import read_csv
    from rnnkit.data.sniff import choose_date_column, price_column, sniff_csv
    from rnnkit.data.tsf import many_series
    from rnnkit.tasks.forecast import Forecaster
    from rnnkit.tasks.forecast.report import kept_forecast, metrics_table
    from rnnkit.tasks.run import a_cell

    out = check_out_dir(args.out)
    guard_model_dir(out, args.force)
    many = many_series(args.csv)
    if many is not None:
        return _forecast_many(args, out, many)
    if args.horizon is None:
        raise RnnkitError("--horizon is required: the number of rows to forecast")
    columns = args.column
    if columns is None:
        close = price_column(sniff_csv(args.csv)[0])
        if close is not None:          # a price download: its close, not open, high, low and volume too
            columns = args.column = [close]
            echo(args, f"{args.csv}: prices (open, high, low, close columns): forecasting {close!r} "
                       f"(--column chooses another)")
    fill = given(args, "fill")
    date_column = choose_date_column(args.csv, columns, args.date_column)
    if args.calendar == "on" and date_column is None:
        raise RnnkitError(f"--calendar on: {args.csv} has no date column (name it with --date-column)")
    context = bool(args.covariate or args.future_covariate or args.series_column)
    # auto: calendar features where the context forecaster runs anyway (covariates, many series);
    # a single series goes to strategy auto, whose seasonal candidates and classical guard are
    # chosen on validation
    calendar = (args.calendar == "on" or (args.calendar == "auto" and context)) and date_column is not None \
        and _reads_as_dates(args.csv, date_column, args.calendar == "on")
    if context or calendar:
        if args.quantiles or given(args, "strategy").get("strategy") == "recursive":
            if context:
                raise RnnkitError("--covariate, --future-covariate and --series-column forecast with the direct "
                                  "strategy and no --quantiles")
            echo(args, "calendar features are not used with --quantiles or --strategy recursive")
        else:
            return _forecast_context(args, out, date_column, calendar)
    # read once here: a missing file, a non-numeric column or a gap fails before anything is written
    try:
        data = read_csv(args.csv, columns, date_column, **fill)
    except RnnkitError as exc:
        raise RnnkitError(csv_hint(str(exc), columns)) from exc
    for note in data.notes:
        echo(args, for_command(note, {"--fill"}))
    N = len(data.values)
    if args.horizon >= N:
        raise RnnkitError(f"--horizon {args.horizon}: {args.csv} has only {N} rows")
    if args.lookback is not None and args.lookback + args.horizon > N:
        raise RnnkitError(f"--lookback {args.lookback} + --horizon {args.horizon} = "
                          f"{args.lookback + args.horizon} rows is longer than {args.csv} ({N} rows)")
    bands = {} if args.quantiles is None else {"intervals": "quantile", "quantiles": args.quantiles}
    fc = Forecaster(lookback=args.lookback, horizon=args.horizon, **bands,
                    **given(args, *MODEL_PARAMS, "strategy", "period", "seed"))
    cols = data.columns
    named = ", ".join(cols) if len(cols) <= 8 else f"{len(cols)} series ({', '.join(cols[:3])}, …, {cols[-1]})"
    echo(args, f"training {a_cell(fc.cell)} forecaster of {named} ({N} rows) "
               f"{args.horizon} step{'' if args.horizon == 1 else 's'} ahead")
    fc.fit(args.csv, columns=columns, date_column=date_column, out_dir=out, quiet=args.quiet, **fill,
           **given(args, "val_fraction", "test_fraction", *TRAINING_PARAMS))
    if fc.history_.interrupted:
        return interrupted(f"interrupted at step {fc.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    lines = []
    res = fc.test_backtest_
    if res is not None:
        lines.append(f"backtest on the test part ({len(res['origins'])} origins), MASE (lower is better):")
        for row in metrics_table(res["metrics"]):
            lines.append(f"  {row[0]:<22} {row[-1]:.4f}")
    else:
        lines.append("no test part (give --test-fraction for a backtest on held-out rows)")
    kept = kept_forecast(fc)
    method = kept["method"]
    line = (f"forecast with the network (strategy {fc.strategy})" if method == "network" else
            f"forecast with {method}" + (f" (network: strategy {fc.strategy})" if "network" in method else ""))
    if kept["validation_mase"] is not None:
        others = [r for r in kept.get("validation", []) if r["forecast"] != kept["method"]][:3]
        line += f", validation MASE {kept['validation_mase']:.4f}" + (
            "; others: " + ", ".join(f"{r['forecast']} {r['val_mase']:.4f}" for r in others) if others else "")
    lines.insert(0, line)
    echo(args, *lines, f"model and predictions: {out}", f"report: {out / 'report.html'}")
    return 0


def _forecast_many(args, out, data) -> int:
    """A file of many series, one per line (a Monash ``.tsf``, an M4 CSV; :mod:`rnnkit.data.tsf`,
    read as ``data``): its series as a long file, one global model; the file's horizon and
    frequency are the defaults of --horizon and --period."""
    from rnnkit.data.context import TSF_COLUMN

    for flag, value in (("--covariate", args.covariate), ("--future-covariate", args.future_covariate),
                        ("--series-column", args.series_column), ("--date-column", args.date_column)):
        if value:
            raise RnnkitError(f"{flag}: {args.csv} holds one series per line, named by the file itself, and no "
                              f"covariates")
    if args.quantiles or given(args, "strategy").get("strategy") == "recursive":
        raise RnnkitError(f"{args.csv}: the series of a file of one series per line forecast with the direct "
                          f"strategy and no --quantiles")
    if args.column and args.column != [TSF_COLUMN]:
        raise RnnkitError(f"--column: a file of one series per line has one value column, {TSF_COLUMN!r}")
    if args.horizon is None:
        if data.horizon is None:
            raise RnnkitError(f"--horizon is required: {args.csv} gives no horizon (a .tsf's @horizon, or the "
                              f"frequency in an M4 file's name)")
        args.horizon = data.horizon
    if not hasattr(args, "period") and data.period:
        args.period = data.period
    dated = all(d is not None for d in data.dates.values())
    lengths = [len(v) for v in data.values.values()]
    given_by = " (the file's)" if data.horizon == args.horizon else ""
    echo(args, f"{args.csv}: {len(data.ids)} series of {min(lengths):,}–{max(lengths):,} rows"
               f"{f', {data.frequency}' if data.frequency else ''}{'' if dated else ', without dates'}; "
               f"horizon {args.horizon}{given_by}")
    args.series_column, args.column = "id", [TSF_COLUMN]
    return _forecast_context(args, out, "date" if dated else None, args.calendar != "off" and dated)


def _reads_as_dates(path, date_column, required: bool) -> bool:
    """Whether the date column's first label reads as a date (:mod:`rnnkit.data.dates`; an
    error if ``required``)."""
    from rnnkit.data.context import parse_dates
    from rnnkit.data.sniff import sniff_csv

    header, first = sniff_csv(path)
    if date_column not in header or len(first) <= header.index(date_column):
        return False
    try:
        parse_dates([first[header.index(date_column)]], f"{path}: column {date_column!r}")
    except RnnkitError:
        if required:
            raise
        return False
    return True


def _forecast_context(args, out, date_column, calendar: bool) -> int:
    """Covariates, known-future inputs, calendar features, many series: the ContextForecaster."""
    from rnnkit.data.context import read_long_csv
    from rnnkit.data.series import read_csv
    from rnnkit.tasks.context_forecast import ContextForecaster

    if args.series_column is not None and not args.column:
        raise RnnkitError("--series-column: name the value column(s) to forecast with --column")
    if args.lookback is not None and args.lookback < 2:
        raise RnnkitError("--lookback must be at least 2")
    if args.column:
        # what the reader noticed in the dates, said before training
        inputs = list(args.covariate or []) + list(args.future_covariate or [])
        wanted, labels = list(args.column) + inputs, {c: None for c in inputs}     # inputs may hold labels
        try:
            known = list(args.future_covariate or [])
            data = (read_csv(args.csv, wanted, date_column, labels=labels, ahead=known, **given(args, "fill"))
                    if args.series_column is None
                    else read_long_csv(args.csv, args.series_column, wanted, date_column, labels=labels,
                                       ahead=known))
        except RnnkitError as exc:
            raise RnnkitError(csv_hint(str(exc), args.column)) from exc
        for note in data.notes:
            echo(args, for_command(note, {"--fill"}))
        if args.series_column is None:
            ahead = 0 if data.ahead is None else len(data.ahead)
        else:
            ahead = max((len(a) for a in data.ahead.values()), default=0)
        if ahead:
            echo(args, f"the last {ahead} row{'' if ahead == 1 else 's'}{' of a series' if args.series_column else ''} "
                       f"give only {', '.join(known)}: the rows ahead, forecast in predictions.csv")
        for column, found in data.labels.items():
            echo(args, f"{column}: {len(found)} label{'' if len(found) == 1 else 's'} ({', '.join(found[:5])}{', …' if len(found) > 5 else ''}), "
                       f"read as one 0/1 input each")
    fc = ContextForecaster(lookback=args.lookback, horizon=args.horizon, calendar=calendar,
                           **given(args, *MODEL_PARAMS, "period", "seed"))
    what = [f"covariates {', '.join(args.covariate)}" if args.covariate else "",
            f"future covariates {', '.join(args.future_covariate)}" if args.future_covariate else "",
            "calendar features" if calendar else "",
            f"series by {args.series_column}" if args.series_column else ""]
    echo(args, f"training a forecaster {args.horizon} step{'' if args.horizon == 1 else 's'} ahead with "
               f"{'; '.join(w for w in what if w)}")
    try:
        fc.fit_csv(args.csv, targets=args.column, covariates=args.covariate, future_covariates=args.future_covariate,
                   date_column=date_column, series_column=args.series_column, out_dir=out, quiet=args.quiet,
                   **given(args, "fill", "val_fraction", "test_fraction", *TRAINING_PARAMS))
    except RnnkitError as exc:
        raise RnnkitError(csv_hint(str(exc), args.column)) from exc
    if fc.history_.interrupted:
        return interrupted(f"interrupted at step {fc.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    ev = fc.test_evaluation_
    lines = ["no test part long enough for a backtest (raise --test-fraction)"]
    if ev is not None:
        lines = [f"backtest on the test parts ({ev['windows']} windows, {ev['series']} series), MASE (lower is "
                 f"better):"]
        for key, label in (("model", f"forecaster ({ev['method']})"), ("network", "the network alone"),
                           ("naive", "naive (last value)"), ("seasonal_naive", "seasonal naive")):
            if key in ev:
                lines.append(f"  {label:<32} {ev[key]['mase']:.4f}")
    echo(args, *lines, f"model and predictions: {out}", f"report: {out / 'report.html'}")
    return 0
