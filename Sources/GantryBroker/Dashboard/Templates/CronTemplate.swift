extension DashboardTemplates {
    static let cron = #"""
    {{<layout}}{{$content}}
    <h1>Cron schedules</h1>
    <div data-live="5">
    <table id="schedules">
      <thead><tr><th>name</th><th>cron</th><th>type</th><th>queue</th><th>next run</th><th>last run</th><th>last job</th><th>state</th>{{#mayAct}}<th></th>{{/mayAct}}</tr></thead>
      <tbody>
      {{#schedules}}<tr data-schedule="{{name}}"><td>{{name}}{{#description}}<div class="muted small">{{description}}</div>{{/description}}</td><td><code>{{cron}}</code> <span class="muted small">{{timezone}}</span></td><td><a href="/types/{{typePath}}">{{type}}</a></td><td>{{queue}}</td><td>{{nextRun}}</td><td>{{lastRun}}</td><td>{{#lastJobID}}<a href="/jobs/{{lastJobID}}">{{lastJobID}}</a>{{/lastJobID}} <a class="small" href="/jobs?type={{typePath}}">jobs of this type</a></td>
      <td>{{#paused}}<span class="state state-paused">paused</span>{{/paused}}{{^paused}}<span class="state state-running">active</span>{{/paused}}</td>
      {{#mayAct}}<td><form class="inline" method="post" action="/cron/{{name}}/trigger"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="trigger">Run now</button></form>
      {{#paused}}<form class="inline" method="post" action="/cron/{{name}}/resume"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="resume">Resume</button></form>{{/paused}}
      {{^paused}}<form class="inline" method="post" action="/cron/{{name}}/pause"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="pause">Pause</button></form>{{/paused}}
      <form class="inline" method="post" action="/cron/{{name}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" data-confirm="Delete schedule {{name}}?">Delete</button></form></td>{{/mayAct}}</tr>{{/schedules}}
      {{^schedules}}<tr><td colspan="9" class="muted">No schedules. Make one from a job type's run form, with cron.upsert, or in the config file's cron: section.</td></tr>{{/schedules}}
      </tbody>
    </table>
    </div>
    {{/content}}{{/layout}}
    """#

    static let audit = #"""
    {{<layout}}{{$content}}
    <h1>Audit</h1>
    <p class="muted">Every action taken from this dashboard, newest first.</p>
    <table id="audit"><thead><tr><th>when</th><th>who</th><th>action</th><th>on</th><th>details</th><th>outcome</th></tr></thead><tbody>
    {{#entries}}<tr><td>{{at}}</td><td>{{actor}}</td><td>{{action}}</td><td>{{target}}</td><td><code>{{details}}</code></td><td>{{outcome}}</td></tr>{{/entries}}
    {{^entries}}<tr><td colspan="6" class="muted">Nothing yet.</td></tr>{{/entries}}
    </tbody></table>
    <div class="pager">{{#nextPage}}<a href="/audit?before={{nextPage}}">Older →</a>{{/nextPage}}</div>
    {{/content}}{{/layout}}
    """#
}
