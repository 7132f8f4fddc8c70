extension DashboardAssets {
    /// One small stylesheet: readable tables, state colours, and forms that look like forms.
    static let stylesheet = #"""
    :root { --fg:#1d2433; --muted:#667085; --line:#e4e7ec; --bg:#f7f8fa; --accent:#2457c5; --bad:#b42318; --ok:#067647; --warn:#b54708; }
    * { box-sizing: border-box; }
    body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
    header.top { display:flex; align-items:center; gap:1.5rem; padding:.6rem 1.5rem; background:#101828; color:#fff; }
    header.top a { color:#d0d5dd; text-decoration:none; }
    header.top a.active, header.top a:hover { color:#fff; }
    header.top .brand { font-weight:700; color:#fff; margin-right:1rem; }
    header.top nav { display:flex; gap:1rem; flex-wrap:wrap; }
    header.top .who { margin-left:auto; display:flex; gap:.75rem; align-items:center; color:#d0d5dd; }
    header.top .who form { margin:0; }
    .banner { background:#fffaeb; border-bottom:1px solid #fedf89; color:var(--warn); padding:.4rem 1.5rem; }
    .notice { background:#ecfdf3; border:1px solid #abefc6; color:var(--ok); padding:.5rem .75rem; border-radius:6px; margin-bottom:1rem; }
    .problem { background:#fef3f2; border:1px solid #fecdca; color:var(--bad); padding:.5rem .75rem; border-radius:6px; margin-bottom:1rem; }
    main { padding:1.25rem 1.5rem 3rem; max-width:1400px; }
    h1 { font-size:1.35rem; margin:.2rem 0 1rem; }
    h2 { font-size:1.05rem; margin:1.5rem 0 .5rem; }
    table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); border-radius:8px; }
    th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
    th { font-weight:600; color:var(--muted); font-size:.8rem; text-transform:uppercase; letter-spacing:.02em; background:#fcfcfd; }
    td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
    a { color:var(--accent); }
    code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.85rem; }
    pre { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.6rem .75rem; overflow:auto; max-height:28rem; margin:.25rem 0; }
    .state { display:inline-block; padding:.05rem .45rem; border-radius:999px; font-size:.78rem; font-weight:600; background:#f2f4f7; }
    .state-available { background:#eff8ff; color:#175cd3; } .state-scheduled { background:#f4f3ff; color:#5925dc; }
    .state-reserved { background:#fffaeb; color:var(--warn); } .state-completed { background:#ecfdf3; color:var(--ok); }
    .state-dead, .state-failed { background:#fef3f2; color:var(--bad); } .state-cancelled, .state-expired { background:#f2f4f7; color:var(--muted); }
    .state-paused { background:#fffaeb; color:var(--warn); } .state-running { background:#eff8ff; color:#175cd3; }
    .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(11rem, 1fr)); gap:.75rem; margin-bottom:1rem; }
    .card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:.75rem; }
    .card .value { font-size:1.5rem; font-weight:700; } .card .label { color:var(--muted); font-size:.8rem; }
    form.inline { display:inline; margin:0; }
    form.filters { display:flex; flex-wrap:wrap; gap:.5rem; align-items:end; margin-bottom:1rem; background:#fff; border:1px solid var(--line); border-radius:8px; padding:.75rem; }
    form.filters label, .stack label { display:flex; flex-direction:column; font-size:.8rem; color:var(--muted); gap:.2rem; }
    input, select, textarea { font:inherit; padding:.35rem .5rem; border:1px solid #d0d5dd; border-radius:6px; background:#fff; color:var(--fg); }
    textarea { width:100%; font-family: ui-monospace, Menlo, monospace; }
    button, .button { font:inherit; padding:.35rem .75rem; border:1px solid #d0d5dd; border-radius:6px; background:#fff; color:var(--fg); cursor:pointer; text-decoration:none; display:inline-block; }
    button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
    button.danger { color:var(--bad); border-color:#fda29b; }
    .muted { color:var(--muted); } .small { font-size:.8rem; }
    .actions { display:flex; gap:.4rem; flex-wrap:wrap; align-items:center; margin:.5rem 0 1rem; }
    .pager { margin-top:.75rem; display:flex; gap:.75rem; }
    .stack { display:flex; flex-direction:column; gap:.75rem; max-width:48rem; background:#fff; border:1px solid var(--line); border-radius:8px; padding:1rem; }
    .row { display:flex; gap:.75rem; flex-wrap:wrap; }
    dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.25rem 1rem; background:#fff; border:1px solid var(--line); border-radius:8px; padding:.75rem 1rem; }
    dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; }
    .chart { background:#fff; border:1px solid var(--line); border-radius:8px; padding:.5rem; }
    .legend span { margin-right:1rem; } .legend .processed { color:var(--accent); } .legend .failed { color:var(--bad); }
    .field { display:flex; flex-direction:column; gap:.2rem; margin-bottom:.6rem; }
    .field > label { font-weight:600; font-size:.85rem; }
    .field-help { color:var(--muted); font-size:.8rem; }
    .field-error { border-color:var(--bad) !important; outline:1px solid var(--bad); }
    .field-error-message, #args-errors li { color:var(--bad); font-size:.85rem; }
    .object-fieldset { border:1px solid var(--line); border-radius:6px; padding:.5rem .75rem; margin:0 0 .6rem; }
    .array-items { display:flex; flex-direction:column; gap:.4rem; margin:.25rem 0; }
    .array-item { border-left:3px solid var(--line); padding-left:.6rem; }
    .progress { height:.5rem; background:var(--line); border-radius:999px; overflow:hidden; width:12rem; display:inline-block; vertical-align:middle; }
    .progress > span { display:block; height:100%; background:var(--accent); }
    .login { max-width:26rem; margin:4rem auto; }
    [hidden] { display:none !important; }
    .field-boolean { flex-direction:row; flex-wrap:wrap; align-items:center; gap:.4rem; }
    .field-boolean > .field-help, .field-boolean > .field-error-message { flex-basis:100%; }
    .field-required { color:var(--bad); margin-left:.15rem; }
    .array-field { border:1px solid var(--line); border-radius:6px; padding:.5rem .75rem; margin:0 0 .6rem; }
    .array-items { list-style:none; padding:0; }
    #args-errors { margin:0; padding-left:1.2rem; }
    .stack .field > label.field-label { display:block; }
    .stack label.small { flex-direction:row; align-items:center; gap:.4rem; }
    .chart svg { max-width:720px; display:block; }
    #audit td:first-child, #jobs td:nth-last-child(-n+2) { white-space:nowrap; }
    ol.timeline { list-style:none; padding:0 0 0 1rem; border-left:2px solid #d0d5dd; }
    ol.timeline li.step { position:relative; padding:.35rem .6rem; margin:.4rem 0; }
    ol.timeline li.step::before { content:""; position:absolute; left:-1.42rem; top:.75rem; width:.7rem; height:.7rem; border-radius:50%; background:#d0d5dd; }
    ol.timeline li.step-completed::before { background:var(--ok); } ol.timeline li.step-failed::before { background:var(--bad); }
    ol.timeline li.step-running::before { background:var(--warn); } ol.timeline li.step-unprocessed { opacity:.6; }
    ol.timeline li.step-retried { opacity:.75; } .step-error { margin-top:.25rem; color:var(--bad); } .step-error pre { color:var(--fg); }
    .problem-text { color:var(--bad); }
    ol.steps { margin:0; padding:0; list-style:none; } ol.steps li { margin:2px 0; white-space:nowrap; }
    .saved { color:var(--muted); font-size:.85em; }
    """#
}
