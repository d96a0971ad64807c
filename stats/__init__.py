"""Usage analytics (#11): who was active, what was posted and how, meetings, captions and files, per UTC day.

`activity.ActivityRecorder` notes who used chat or meetings today (one write per login, day and process);
`rollup.roll_up_day` turns a day of the store into rows of usage_daily (replacing that day's rows);
`report.read_series` reads them back for GET /v1/admin/stats; `job.RollupJob` keeps today and yesterday fresh.
See docs/analytics.md.
"""
