extension DashboardTemplates {
    static let events = #"""
    {{<layout}}{{$content}}
    <h1>Events</h1>
    <form class="filters" method="get" action="/events" id="event-filters">
      <label>type <input name="type" value="{{filterType}}" placeholder="order.paid or order.*"></label>
      <button type="submit">Filter</button> <a class="small" href="/events">clear</a>
    </form>
    <div data-live="5">
    <table id="events">
      <thead><tr><th>id</th><th>type</th><th>published</th><th>key</th><th>started</th><th>payload</th></tr></thead>
      <tbody>
      {{#events}}<tr data-event="{{id}}"><td><a href="/events/{{id}}">{{id}}</a>{{#replayOf}} <span class="muted small">replay of {{replayOf}}</span>{{/replayOf}}</td><td>{{type}}</td><td>{{published}}</td><td>{{key}}</td>
      <td>{{#triggered}}<div>{{subscription}} → {{#jobID}}<a href="/jobs/{{jobID}}">job {{jobID}}</a>{{/jobID}}{{#operationID}}<a href="/operations/{{operationID}}">operation {{operationID}}</a>{{/operationID}}</div>{{/triggered}}{{^triggered}}<span class="muted">nothing</span>{{/triggered}}</td>
      <td><code>{{payload}}</code></td></tr>{{/events}}
      {{^events}}<tr><td colspan="6" class="muted">No events. Publish one with events.publish, gantry events publish, or gantry.publish(...) in SQL.</td></tr>{{/events}}
      </tbody>
    </table>
    </div>
    <div class="pager">{{#nextPage}}<a href="/events?{{nextPage}}">Older →</a>{{/nextPage}}</div>
    <h2>Subscriptions</h2>
    <table id="subscriptions">
      <thead><tr><th>name</th><th>event</th><th>filter</th><th>starts</th><th>state</th>{{#mayAct}}<th></th>{{/mayAct}}</tr></thead>
      <tbody>
      {{#subscriptions}}<tr data-subscription="{{name}}"><td>{{name}} <span class="muted small">{{source}}</span></td><td><code>{{event}}</code></td><td><code>{{filter}}</code></td><td>{{target}}</td>
      <td>{{#paused}}<span class="state state-paused">paused</span>{{/paused}}{{^paused}}<span class="state state-running">active</span>{{/paused}}</td>
      {{#mayAct}}<td>{{#paused}}<form class="inline" method="post" action="/subscriptions/{{name}}/resume"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="resume">Resume</button></form>{{/paused}}
      {{^paused}}<form class="inline" method="post" action="/subscriptions/{{name}}/pause"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="pause">Pause</button></form>{{/paused}}
      <form class="inline" method="post" action="/subscriptions/{{name}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" data-confirm="Delete subscription {{name}}?">Delete</button></form></td>{{/mayAct}}</tr>{{/subscriptions}}
      {{^subscriptions}}<tr><td colspan="6" class="muted">No subscriptions. Make one with subscriptions.upsert or the config file's subscriptions: section.</td></tr>{{/subscriptions}}
      </tbody>
    </table>
    {{/content}}{{/layout}}
    """#

    static let event = #"""
    {{<layout}}{{$content}}
    {{#missing}}<h1>Event {{id}}</h1><p class="muted" id="missing">No event has id {{id}}. Events are kept as long as failed jobs.</p>{{/missing}}
    {{^missing}}
    <h1>Event {{id}} <span class="muted">{{type}}</span></h1>
    {{#mayAct}}<div class="actions"><form class="inline" method="post" action="/events/{{id}}/replay"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="replay" data-confirm="Publish event {{id}} again? Every subscription matching now starts again.">Replay</button></form></div>{{/mayAct}}
    <dl class="facts">
      <dt>published</dt><dd>{{published}}</dd>
      {{#key}}<dt>key</dt><dd><code>{{key}}</code></dd>{{/key}}
      {{#replayOf}}<dt>replay of</dt><dd><a href="/events/{{replayOf}}">event {{replayOf}}</a></dd>{{/replayOf}}
    </dl>
    {{#seesArgs}}<h2>Payload</h2><pre id="event-payload">{{payload}}</pre>{{/seesArgs}}
    {{^seesArgs}}<p class="muted">Payloads are hidden from viewers on this broker.</p>{{/seesArgs}}
    <h2>Started</h2>
    <table id="triggered"><thead><tr><th>subscription</th><th>what</th><th>state now</th></tr></thead><tbody>
    {{#triggered}}<tr data-subscription="{{subscription}}"><td>{{subscription}}</td><td>{{#jobID}}<a href="/jobs/{{jobID}}">job {{jobID}}</a>{{/jobID}}{{#operationID}}<a href="/operations/{{operationID}}">operation {{operationID}}</a>{{/operationID}}</td><td><span class="state state-{{state}}">{{state}}</span></td></tr>{{/triggered}}
    {{^triggered}}<tr><td colspan="3" class="muted">No subscription matched.</td></tr>{{/triggered}}
    </tbody></table>
    {{/missing}}
    {{/content}}{{/layout}}
    """#
}
