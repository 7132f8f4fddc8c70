extension DashboardTemplates {
    static let types = #"""
    {{<layout}}{{$content}}
    <h1>Job types</h1>
    <table id="types"><thead><tr><th>type</th><th>description</th><th>queue</th><th>schema</th><th>from</th><th>last announced</th><th></th></tr></thead><tbody>
    {{#types}}<tr data-type="{{type}}"><td><a href="/types/{{typePath}}">{{type}}</a></td><td>{{description}}</td><td>{{queue}}</td><td>{{#hasSchema}}yes{{/hasSchema}}{{^hasSchema}}<span class="muted">any args</span>{{/hasSchema}}</td><td>{{source}}</td><td>{{announced}}</td><td>{{#mayAct}}{{#runnable}}<a class="button" href="/types/{{typePath}}">Run…</a>{{/runnable}}{{/mayAct}}</td></tr>{{/types}}
    {{^types}}<tr><td colspan="7" class="muted">No job types yet. Workers announce theirs in hello (handlers with args_schema); operators register them with types.register.</td></tr>{{/types}}
    </tbody></table>
    {{/content}}{{/layout}}
    """#

    static let type = #"""
    {{<layout}}{{$content}}
    <h1>{{type}}</h1>
    {{#description}}<p>{{description}}</p>{{/description}}
    <dl class="facts">
      <dt>default queue</dt><dd>{{queueOrDefault}}</dd><dt>from</dt><dd>{{source}}</dd><dt>last announced</dt><dd>{{announced}}</dd>
      <dt>runnable by hand</dt><dd>{{#runnable}}yes{{/runnable}}{{^runnable}}no{{/runnable}}</dd>
    </dl>
    {{#mayAct}}{{#runnable}}
    <h2>Run</h2>
    {{#hasPresets}}<div class="actions"><span class="muted small">Presets:</span>{{#presets}}<a class="button preset" href="/types/{{typePath}}?preset={{namePath}}">{{name}}</a><form class="inline" method="post" action="/types/{{typePath}}/presets/{{namePath}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="delete-preset small" aria-label="delete the preset {{name}}" data-confirm="Delete the preset {{name}}?">×</button></form>{{/presets}}</div>{{/hasPresets}}
    <form class="stack" id="run-form" method="post" action="/types/{{typePath}}/run" novalidate>
      <input type="hidden" name="csrf" value="{{csrf}}">
      <script type="application/json" id="args-schema">{{{schemaJSON}}}</script>
      <div id="args-fields"></div>
      <label class="small"><input type="checkbox" id="args-raw-toggle"> Edit as JSON</label>
      <textarea id="args-json" name="args" rows="8" aria-label="args as JSON">{{argsJSON}}</textarea>
      <ul id="args-errors">{{#errors}}<li data-path="{{path}}">{{path}}: {{message}}</li>{{/errors}}</ul>
      <div class="row">
        <label>queue <input name="queue" value="{{queueOrDefault}}" size="14"></label>
        <label>priority <input name="priority" type="number" value="{{priority}}" min="1" max="32767"></label>
        <label>when <select name="when" id="when"><option value="now">now</option><option value="at"{{#whenAt}} selected{{/whenAt}}>at a time (UTC)</option><option value="cron"{{#whenCron}} selected{{/whenCron}}>on a cron schedule</option></select></label>
        <label>run at (UTC) <input type="datetime-local" name="run_at" value="{{runAt}}"></label>
      </div>
      <div class="row">
        <label>schedule name <input name="schedule_name" value="{{scheduleName}}"></label>
        <label>cron <input name="cron" value="{{cronText}}" placeholder="0 3 * * *"></label>
        <label>time zone <input name="timezone" value="{{timezoneOrUTC}}"></label>
      </div>
      <div class="row"><button class="primary" type="submit" id="run">Enqueue</button>
        <label>save as preset <input name="preset_name" placeholder="name (optional)"></label></div>
    </form>
    <script src="/assets/form.js"></script>
    {{/runnable}}{{/mayAct}}
    <h2>Argument schema</h2>
    {{#schemaPretty}}<pre id="schema">{{schemaPretty}}</pre>{{/schemaPretty}}{{^schemaPretty}}<p class="muted">None: any args are accepted.</p>{{/schemaPretty}}
    <p><a href="/jobs?type={{typePath}}">Jobs of this type</a></p>
    {{/content}}{{/layout}}
    """#
}
