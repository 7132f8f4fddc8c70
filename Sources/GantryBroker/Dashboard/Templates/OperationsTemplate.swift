extension DashboardTemplates {
    static let operations = #"""
    {{<layout}}{{$content}}
    <h1>Operations</h1>
    <form class="filters" method="get" action="/operations" id="operation-filters">
      <label>name <input name="name" value="{{filterName}}" placeholder="signup"></label>
      <label>state <select name="state"><option value="">any</option>{{#states}}<option value="{{state}}"{{#selected}} selected{{/selected}}>{{state}}</option>{{/states}}</select></label>
      {{#seesArgs}}<label>globals contain <input name="globals" value="{{filterGlobals}}" placeholder='{"user_id": 7}' class="wide"></label>{{/seesArgs}}
      <button type="submit">Filter</button> <a class="small" href="/operations">clear</a>
    </form>
    <div data-live="5">
    <table id="operations">
      <thead><tr><th>id</th><th>name</th><th>state</th><th>at</th><th>path</th><th>globals</th><th>started</th><th>finished</th></tr></thead>
      <tbody>
      {{#operations}}<tr data-operation="{{id}}"><td><a href="/operations/{{id}}">{{id}}</a></td><td><a href="/operations?name={{namePath}}">{{name}}</a></td>
      <td><span class="state state-{{state}}">{{state}}</span>{{#error}}<div class="small problem-text">{{error}}</div>{{/error}}</td><td>{{at}}</td><td>{{path}}</td><td><code>{{globals}}</code></td><td>{{created}}</td><td>{{finished}}</td></tr>{{/operations}}
      {{^operations}}<tr><td colspan="8" class="muted">No operations match. Start one with operations.start (every client has it).</td></tr>{{/operations}}
      </tbody>
    </table>
    </div>
    <div class="pager">{{#nextPage}}<a href="/operations?{{nextPage}}">Older →</a>{{/nextPage}}</div>
    {{/content}}{{/layout}}
    """#

    static let operation = #"""
    {{<layout}}{{$content}}
    {{#missing}}<h1>Operation {{id}}</h1><p class="muted" id="missing">No operation has id {{id}}. It may have finished longer ago than the broker keeps operations.</p>{{/missing}}
    {{^missing}}
    <h1>Operation {{id}} <span class="muted">{{name}}</span> <span class="state state-{{state}}" id="operation-state">{{state}}</span></h1>
    {{#mayAct}}
    <div class="actions">
      {{#canResume}}<form class="inline" method="post" action="/operations/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="from" value="failed"><button type="submit" class="primary" id="resume">Retry from the failed step</button></form>{{/canResume}}
      {{#canRestart}}<form class="inline" method="post" action="/operations/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="from" value="start"><button type="submit" id="restart" data-confirm="Run operation {{id}} again from its first step, with the globals it started with?">Run again from the start</button></form>{{/canRestart}}
      {{#canCancel}}<form class="inline" method="post" action="/operations/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="cancel" data-confirm="Cancel operation {{id}}? Its waiting steps are cancelled and its running ones asked to stop.">Cancel</button></form>{{/canCancel}}
    </div>
    {{/mayAct}}
    {{#errorMessage}}<div class="problem" id="operation-error">Failed at {{errorAt}}: {{errorMessage}}</div>{{/errorMessage}}
    <dl class="facts">
      {{#key}}<dt>key</dt><dd><code>{{key}}</code></dd>{{/key}}
      <dt>queue</dt><dd>{{queue}}</dd>
      <dt>at</dt><dd>{{at}}</dd>
      <dt>path</dt><dd id="operation-path">{{path}}</dd>
      <dt>started</dt><dd>{{created}}</dd>
      <dt>updated</dt><dd>{{updated}}</dd>
      {{#finished}}<dt>finished</dt><dd>{{finished}}</dd>{{/finished}}
    </dl>
    {{#seesArgs}}<h2>Globals</h2><pre id="operation-globals">{{globals}}</pre>{{/seesArgs}}
    {{^seesArgs}}<p class="muted">Globals are hidden from viewers on this broker.</p>{{/seesArgs}}
    <h2>Steps</h2>
    <ol class="timeline" id="steps">
    {{#steps}}<li class="step step-{{state}}{{#retried}} step-retried{{/retried}}" data-step="{{type}}" data-state="{{state}}">
      <span class="state state-{{stateClass}}">{{state}}{{#retried}} · retried{{/retried}}</span>
      <strong><a href="/types/{{typePath}}">{{type}}</a></strong> <span class="muted small">{{branch}} · step {{place}}</span>
      {{#jobID}}<span class="small">job <a href="/jobs/{{jobID}}">{{jobID}}</a> · attempt{{#attempts}} {{attempts}}{{/attempts}}{{#started}} · started {{started}}{{/started}}{{#took}} · took {{took}}{{/took}}</span>{{/jobID}}
      {{#message}}<div class="step-error"><strong>{{kind}}</strong> {{message}}{{#backtrace}}<pre>{{backtrace}}</pre>{{/backtrace}}</div>{{/message}}
    </li>{{/steps}}
    </ol>
    {{/missing}}
    {{/content}}{{/layout}}
    """#
}
