extension DashboardTemplates {
    static let queues = #"""
    {{<layout}}{{$content}}
    <h1>Queues</h1>
    <div data-live="5">
    <table id="queues">
      <thead><tr><th>queue</th><th class="num">available</th><th class="num">scheduled</th><th class="num">reserved</th><th class="num">dead</th><th>oldest available</th><th>concurrency</th><th>rate limit</th><th>state</th>{{#mayAct}}<th></th>{{/mayAct}}</tr></thead>
      <tbody>
      {{#queues}}<tr data-queue="{{name}}"><td><a href="/jobs?queue={{name}}">{{name}}</a></td><td class="num">{{available}}</td><td class="num">{{scheduled}}</td><td class="num">{{reserved}}</td><td class="num"><a href="/jobs?queue={{name}}&state=dead">{{dead}}</a></td><td>{{latency}}</td><td>{{concurrency}}</td><td>{{rateLimit}}</td>
      <td>{{#paused}}<span class="state state-paused">paused</span>{{/paused}}{{^paused}}<span class="state state-running">running</span>{{/paused}}</td>
      {{#mayAct}}<td>{{#paused}}<form class="inline" method="post" action="/queues/{{name}}/resume"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="resume">Resume</button></form>{{/paused}}{{^paused}}<form class="inline" method="post" action="/queues/{{name}}/pause"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="pause">Pause</button></form>{{/paused}}</td>{{/mayAct}}</tr>{{/queues}}
      {{^queues}}<tr><td colspan="10" class="muted">No queues yet.</td></tr>{{/queues}}
      </tbody>
    </table>
    </div>
    {{#mayAct}}
    <h2>Limits</h2>
    <form class="filters" method="post" action="/queues/limits" id="limits-form">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <label>queue <input name="queue" required></label>
      <label>concurrency (blank: none) <input name="concurrency" type="number" min="1"></label>
      <label>rate limit: starts <input name="rate_limit" type="number" min="1"></label>
      <label>per ms <input name="rate_period_ms" type="number" min="1"></label>
      <button type="submit" class="primary">Set limits</button>
    </form>
    {{/mayAct}}
    {{/content}}{{/layout}}
    """#

    static let workers = #"""
    {{<layout}}{{$content}}
    <h1>Workers</h1>
    {{#mayAct}}<div class="actions">
      <form class="inline" method="post" action="/workers/quiet"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="all" value="true"><button type="submit" data-confirm="Tell every worker to take no new jobs?">Quiet all</button></form>
      <form class="inline" method="post" action="/workers/stop"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="all" value="true"><button type="submit" class="danger" data-confirm="Tell every worker to hand back its jobs and exit?">Stop all</button></form>
    </div>{{/mayAct}}
    <div data-live="5">
    <table id="workers">
      <thead><tr><th>worker</th><th>client</th><th>peer</th><th>queues</th><th>handlers</th><th class="num">holds</th><th class="num">concurrency</th><th>state</th><th>connected</th><th>last seen</th>{{#mayAct}}<th></th>{{/mayAct}}</tr></thead>
      <tbody>
      {{#workers}}<tr data-worker="{{id}}"><td>{{id}}</td><td>{{client}}</td><td>{{peer}}</td><td>{{queues}}</td><td>{{handlers}}</td><td class="num">{{#jobsHeld}}<a href="/jobs?state=reserved">{{jobsHeld}}</a>{{/jobsHeld}}{{^jobsHeld}}0{{/jobsHeld}}</td><td class="num">{{concurrency}}</td><td><span class="state state-{{state}}">{{state}}</span></td><td>{{connected}}</td><td>{{lastSeen}}</td>
      {{#mayAct}}<td><form class="inline" method="post" action="/workers/quiet"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="id" value="{{id}}"><button type="submit" class="quiet">Quiet</button></form>
      <form class="inline" method="post" action="/workers/stop"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="id" value="{{id}}"><button type="submit" class="stop danger" data-confirm="Stop worker {{id}}?">Stop</button></form></td>{{/mayAct}}</tr>{{/workers}}
      {{^workers}}<tr><td colspan="11" class="muted">No workers connected.</td></tr>{{/workers}}
      </tbody>
    </table>
    </div>
    {{/content}}{{/layout}}
    """#
}
