extension DashboardTemplates {
    static let packages = #"""
    {{<layout}}{{$content}}
    <h1>Packages</h1>
    <table id="packages">
      <thead><tr><th>name</th><th>steps</th><th>started by</th><th>next run</th><th>state</th><th>config</th></tr></thead>
      <tbody>
      {{#packages}}<tr data-package="{{name}}"><td><a href="/packages/{{namePath}}">{{name}}</a> <span class="muted small">{{source}}</span>{{#description}}<div class="muted small">{{description}}</div>{{/description}}</td>
      <td>{{steps}}</td><td>{{triggers}}</td><td>{{next}}</td>
      <td>{{#active}}<span class="state state-running">active</span>{{/active}}{{^active}}<span class="state state-paused">inactive</span>{{/active}}</td>
      <td><code>{{config}}</code></td></tr>{{/packages}}
      {{^packages}}<tr><td colspan="6" class="muted">No packages. Make one with packages.upsert or the config file's packages: section.</td></tr>{{/packages}}
      </tbody>
    </table>
    <h2>Saved executions</h2>
    <table id="saved">
      <thead><tr><th>saved as</th><th>package</th><th>execution</th><th>state</th><th>steps</th></tr></thead>
      <tbody>
      {{#saved}}<tr data-saved="{{savedName}}"><td>{{savedName}}{{#savedDescription}}<div class="muted small">{{savedDescription}}</div>{{/savedDescription}}</td>
      <td><a href="/packages/{{packagePath}}">{{package}}</a></td><td><a href="/operations/{{id}}">{{id}}</a></td>
      <td><span class="state state-{{state}}">{{state}}</span></td>
      <td>{{#steps}}<span class="state state-{{stateClass}}" title="{{type}}">{{type}}</span> {{/steps}}</td></tr>{{/saved}}
      {{^saved}}<tr><td colspan="5" class="muted">None saved. Save an execution from its package's page to keep it for good.</td></tr>{{/saved}}
      </tbody>
    </table>
    {{/content}}{{/layout}}
    """#

    static let package = #"""
    {{<layout}}{{$content}}
    {{#missing}}<h1>Package {{name}}</h1><p class="muted" id="missing">No package is named {{name}}.</p>{{/missing}}
    {{^missing}}
    <h1>Package {{name}} {{^active}}<span class="state state-paused">inactive</span>{{/active}}</h1>
    {{#description}}<p>{{description}}</p>{{/description}}
    <dl class="facts">
      <dt>steps</dt><dd id="package-steps">{{steps}}</dd>
      <dt>started by</dt><dd id="package-triggers">{{triggers}}</dd>
      {{#next}}<dt>next run</dt><dd>{{next}}</dd>{{/next}}
      <dt>queue</dt><dd>{{queue}}</dd>
      <dt>defined by</dt><dd>{{source}}</dd>
    </dl>
    {{#seesArgs}}<h2>Config</h2><pre id="package-config">{{config}}</pre>{{/seesArgs}}
    {{^seesArgs}}<p class="muted">Configs are hidden from viewers on this broker.</p>{{/seesArgs}}
    {{#mayAct}}{{#runnable}}
    <h2>Run now</h2>
    {{#runProblem}}<div class="problem" id="run-problem">{{runProblem}}</div>{{/runProblem}}
    <form class="stack" method="post" action="/packages/{{namePath}}/run" id="run-package">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <label>Config overrides for this run (JSON; keys of the config above) <textarea name="config" rows="3" id="run-config">{{runConfig}}</textarea></label>
      <button type="submit" class="primary" id="run">Run</button>
    </form>
    {{/runnable}}{{/mayAct}}
    <h2>Executions</h2>
    <div data-live="5">
    <table id="executions">
      <thead><tr><th>execution</th><th>state</th><th>by</th><th>started</th><th>steps</th><th>config</th>{{#mayAct}}<th>keep</th>{{/mayAct}}</tr></thead>
      <tbody>
      {{#executions}}<tr data-execution="{{id}}"><td><a href="/operations/{{id}}">{{id}}</a></td>
      <td><span class="state state-{{state}}">{{state}}</span>{{#error}}<div class="small problem-text">{{error}}</div>{{/error}}</td><td>{{trigger}}</td><td>{{started}}</td>
      <td><ol class="steps">{{#steps}}<li data-step-state="{{state}}"><span class="muted small">{{place}}</span> <span class="state state-{{stateClass}}">{{state}}</span> {{#jobID}}<a href="/jobs/{{jobID}}">{{type}}</a>{{/jobID}}{{^jobID}}{{type}}{{/jobID}}{{#result}} <code class="small">{{result}}</code>{{/result}}</li>{{/steps}}</ol></td>
      <td><code>{{config}}</code></td>
      {{#mayAct}}<td>{{#savedName}}<span class="saved">saved as {{savedName}}</span>{{/savedName}}{{^savedName}}<form class="inline" method="post" action="/packages/{{packagePath}}/executions/{{id}}/save"><input type="hidden" name="csrf" value="{{csrf}}"><input name="name" placeholder="name" size="10" required><button type="submit" class="save">Save</button></form>{{/savedName}}</td>{{/mayAct}}</tr>{{/executions}}
      {{^executions}}<tr><td colspan="7" class="muted">No executions yet.</td></tr>{{/executions}}
      </tbody>
    </table>
    </div>
    <div class="pager">{{#nextPage}}<a href="/packages/{{namePath}}?{{nextPage}}">Older →</a>{{/nextPage}}</div>
    {{/missing}}
    {{/content}}{{/layout}}
    """#
}
