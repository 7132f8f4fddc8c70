extension DashboardAssets {
    /// The run form's script: turns the job type's JSON Schema (#args-schema) into fields for its args and writes them back into #args-json as JSON on submit.
    static let formScript = #"""
    // Gantry dashboard: builds form fields for a job's args from the type's JSON Schema.
    // The fields are a view over #args-json; on submit they are written back into it
    // as JSON. No validation here beyond "is this JSON": the server checks the args.
    (function () {
      "use strict";

      var OMIT = { omit: true };       // a member left out of its object
      var INVALID = { invalid: true }; // a JSON textarea whose text does not parse
      var NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

      var form, fieldsBox, textarea, toggle, schema, root = null, raw = false, idSeq = 0;

      function isObj(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
      function has(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }

      function newId() {
        var id;
        do { id = "args-field-" + (++idSeq); } while (document.getElementById(id));
        return id;
      }

      // A member's path as the server spells it: `args.name` for a name like an
      // identifier, otherwise `args["the name"]` in JSON string escaping.
      function memberPath(path, name) {
        if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return path + "." + name;
        var q = name.replace(/["\\\u0000-\u001f]/g, function (c) {
          if (c === "\"" || c === "\\") return "\\" + c;
          if (c === "\n") return "\\n";
          if (c === "\r") return "\\r";
          if (c === "\t") return "\\t";
          return "\\u00" + (c.charCodeAt(0) < 16 ? "0" : "") + c.charCodeAt(0).toString(16);
        });
        return path + "[\"" + q + "\"]";
      }

      function make(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined && text !== null) e.textContent = text;
        return e;
      }

      function button(cls, text) {
        var b = make("button", cls, text);
        b.type = "button";
        return b;
      }

      function describe(target, id) {
        var ids = (target.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        ids.push(id);
        target.setAttribute("aria-describedby", ids.join(" "));
      }

      function undescribe(target, id) {
        var ids = (target.getAttribute("aria-describedby") || "").split(" ").filter(function (x) { return x && x !== id; });
        if (ids.length) target.setAttribute("aria-describedby", ids.join(" "));
        else target.removeAttribute("aria-describedby");
      }

      // ---- schema kinds ------------------------------------------------------

      function schemaKind(s) {
        if (!isObj(s)) return "json";
        if ("$ref" in s || "oneOf" in s || "anyOf" in s || "allOf" in s || "not" in s || "if" in s) return "json";
        if (Array.isArray(s.enum) && s.enum.length > 0) return "enum";
        switch (s.type) {
          case "string": case "integer": case "number": case "boolean": case "array":
            return s.type;
          case "object":
            return isObj(s.properties) ? "object" : "json";
          default:
            return "json";
        }
      }

      function fits(kind, v) {
        switch (kind) {
          case "string": return typeof v === "string";
          case "integer": case "number": return typeof v === "number";
          case "boolean": return typeof v === "boolean";
          case "array": return Array.isArray(v);
          case "object": return isObj(v);
          default: return true;
        }
      }

      // ---- labels and help ---------------------------------------------------

      function heading(tag, text, required, forId) {
        var h = make(tag, tag === "label" ? "field-label" : null);
        h.appendChild(document.createTextNode(text));
        if (required) {
          var mark = make("span", "field-required", "*");
          mark.title = "required";
          h.appendChild(document.createTextNode(" "));
          h.appendChild(mark);
        }
        if (forId) h.htmlFor = forId;
        return h;
      }

      function help(s, target) {
        if (!isObj(s) || typeof s.description !== "string" || s.description === "") return null;
        var h = make("div", "field-help", s.description);
        h.id = newId();
        describe(target, h.id);
        return h;
      }

      // ---- editors -----------------------------------------------------------
      // build() returns { el, read(errors), setPath(path), setLabel(text) }.
      // read() gives the value, OMIT, or INVALID (after pushing to errors).
      // o: { label, required, item (an array item), value, hasValue }

      function build(s, path, o) {
        var value = o.value, hasValue = o.hasValue;
        if (!hasValue && isObj(s) && has(s, "default")) { value = s.default; hasValue = true; }
        var kind = schemaKind(s);
        if (hasValue && !fits(kind, value)) kind = "json";
        if (kind === "object") return objectEditor(s, path, o, value, hasValue, false);
        if (kind === "array") return arrayEditor(s, path, o, value, hasValue);
        return scalarEditor(kind, s, path, o, value, hasValue);
      }

      function scalarEditor(kind, s, path, o, value, hasValue) {
        var wrap = make("div", "field field-" + kind);
        var id = newId(), input;
        var empty = o.item ? null : OMIT; // what an empty number/enum/JSON field means

        if (kind === "enum") {
          input = make("select");
          var wanted = hasValue ? JSON.stringify(value) : null, found = false;
          if (!o.required || !hasValue) input.appendChild(new Option("\u2014", ""));
          s.enum.forEach(function (v) {
            var code = JSON.stringify(v);
            var opt = new Option(typeof v === "string" ? v : code, code);
            if (code === wanted) { opt.selected = true; found = true; }
            input.appendChild(opt);
          });
          if (hasValue && !found) { // keep a value the list does not have, so it round-trips
            var extra = new Option((typeof value === "string" ? value : wanted) + " (not in the list)", wanted);
            extra.selected = true;
            input.appendChild(extra);
          }
          if (!hasValue) input.value = "";
        } else if (kind === "boolean") {
          input = make("input");
          input.type = "checkbox";
          input.checked = hasValue && value === true;
        } else if (kind === "json" || (kind === "string" && hasValue && value.indexOf("\n") >= 0)) {
          input = make("textarea", kind === "json" ? "field-json" : null);
          input.spellcheck = false;
          input.value = !hasValue ? "" : kind === "json" ? JSON.stringify(value, null, 2) : value;
          input.rows = Math.min(Math.max(input.value.split("\n").length, 2), 10);
        } else {
          input = make("input");
          input.type = "text";
          if (kind === "integer") input.inputMode = "numeric";
          if (kind === "number") input.inputMode = "decimal";
          var text = !hasValue ? "" : kind === "string" ? value : String(value);
          if (kind === "string" && s.format === "date") {
            input.type = "date";
            input.value = text;
            if (input.value !== text) input.type = "text"; // a value a date input would drop
          } else if (kind === "string" && s.format === "date-time") {
            input.placeholder = "2025-01-31T09:00:00Z";
          }
          input.value = text;
        }
        input.id = id;
        input.dataset.path = path;

        var label = heading("label", o.label, o.required, id);
        var helpEl = help(s, input);
        if (kind === "boolean") {
          wrap.appendChild(input);
          wrap.appendChild(label);
          if (helpEl) wrap.appendChild(helpEl);
        } else {
          wrap.appendChild(label);
          if (helpEl) wrap.appendChild(helpEl);
          wrap.appendChild(input);
        }
        if (kind === "json") input.addEventListener("input", function () { clearClientError(input); });

        function read(errors) {
          var t;
          switch (kind) {
            case "boolean":
              return input.checked;
            case "enum":
              return input.value === "" ? empty : JSON.parse(input.value);
            case "integer": case "number":
              t = input.value.trim();
              if (t === "") return empty;
              if (NUMBER_TEXT.test(t) && isFinite(Number(t))) return Number(t);
              return t; // the server will say it is not a number
            case "json":
              t = input.value.trim();
              if (t === "") return empty;
              try { return JSON.parse(t); } catch (e) {
                errors.push({ input: input, message: "not valid JSON" });
                return INVALID;
              }
            default: // string
              if (input.value === "") return (o.required || o.item) ? "" : OMIT;
              return input.value;
          }
        }

        return {
          el: wrap,
          read: read,
          setPath: function (p) { input.dataset.path = p; },
          setLabel: function (t) { label.firstChild.nodeValue = t; }
        };
      }

      function objectEditor(s, path, o, value, hasValue, isRoot) {
        var props = s.properties;
        var required = Array.isArray(s.required) ? s.required : [];
        var box, legend = null;
        if (isRoot) {
          box = document.createDocumentFragment();
        } else {
          box = make("fieldset", "field object-fieldset");
          box.dataset.path = path;
          legend = heading("legend", o.label, o.required);
          box.appendChild(legend);
          var helpEl = help(s, box);
          if (helpEl) box.appendChild(helpEl);
        }
        var v = hasValue && isObj(value) ? value : {};

        var children = Object.keys(props).map(function (key) {
          var ps = props[key];
          var title = isObj(ps) && typeof ps.title === "string" && ps.title !== "" ? ps.title : key;
          var editor = build(ps, memberPath(path, key), {
            label: title,
            required: required.indexOf(key) >= 0,
            item: false,
            value: v[key],
            hasValue: has(v, key)
          });
          box.appendChild(editor.el);
          return { key: key, editor: editor };
        });

        // Members the schema does not name: shown as JSON so they are not lost.
        var extra = null, extraKeys = Object.keys(v).filter(function (k) { return !has(props, k); });
        if (extraKeys.length) {
          var rest = {};
          extraKeys.forEach(function (k) { rest[k] = v[k]; });
          extra = scalarEditor("json", {}, path, { label: "Other properties", required: false, item: false }, rest, true);
          box.appendChild(extra.el);
        }

        return {
          el: box,
          read: function (errors) {
            var out = {}, bad = false, blank = true;
            children.forEach(function (c) {
              var r = c.editor.read(errors);
              if (r === INVALID) bad = true;
              else if (r !== OMIT) {
                out[c.key] = r;
                if (r !== false && r !== "") blank = false;
              }
            });
            if (extra) {
              var r = extra.read(errors);
              if (r === INVALID) bad = true;
              else if (isObj(r)) Object.keys(r).forEach(function (k) { out[k] = r[k]; blank = false; });
              else if (r !== OMIT) {
                errors.push({ input: extra.el.querySelector("textarea"), message: "must be a JSON object" });
                bad = true;
              }
            }
            if (bad) return INVALID;
            // An optional object nobody filled in is left out rather than sent half-empty.
            if (!isRoot && !o.required && !o.item && !hasValue && blank) return OMIT;
            return out;
          },
          setPath: function (p) {
            path = p;
            if (!isRoot) box.dataset.path = p;
            children.forEach(function (c) { c.editor.setPath(memberPath(p, c.key)); });
            if (extra) extra.setPath(p);
          },
          setLabel: function (t) { if (legend) legend.firstChild.nodeValue = t; }
        };
      }

      function arrayEditor(s, path, o, value, hasValue) {
        var itemSchema = isObj(s.items) ? s.items : {};
        var box = make("fieldset", "field array-field");
        box.dataset.path = path;
        var legend = heading("legend", o.label, o.required);
        box.appendChild(legend);
        var helpEl = help(s, box);
        if (helpEl) box.appendChild(helpEl);
        var list = make("ol", "array-items");
        box.appendChild(list);
        var add = button("add-item", "Add");
        box.appendChild(add);
        var items = [];

        function renumber() {
          items.forEach(function (it, i) {
            it.editor.setPath(path + "[" + i + "]");
            it.editor.setLabel("Item " + (i + 1));
            it.remove.setAttribute("aria-label", "Remove item " + (i + 1));
          });
        }

        function addItem(v, hv) {
          var li = make("li", "array-item");
          var editor = build(itemSchema, path + "[" + items.length + "]", {
            label: "Item", required: false, item: true, value: v, hasValue: hv
          });
          var remove = button("remove-item", "Remove");
          li.appendChild(editor.el);
          li.appendChild(remove);
          var entry = { li: li, editor: editor, remove: remove };
          remove.addEventListener("click", function () {
            var i = items.indexOf(entry);
            items.splice(i, 1);
            li.remove();
            renumber();
            var next = items[i] || items[i - 1];
            (next ? next.remove : add).focus();
          });
          items.push(entry);
          list.appendChild(li);
          renumber();
          return entry;
        }

        if (hasValue) value.forEach(function (v) { addItem(v, true); });
        add.addEventListener("click", function () {
          var entry = addItem(undefined, false);
          var first = entry.li.querySelector("input, select, textarea");
          if (first) first.focus();
        });

        return {
          el: box,
          read: function (errors) {
            var out = [], bad = false;
            items.forEach(function (it) {
              var r = it.editor.read(errors);
              if (r === INVALID) bad = true;
              else out.push(r === OMIT ? null : r);
            });
            if (bad) return INVALID;
            if (!o.required && !o.item && !hasValue && out.length === 0) return OMIT;
            return out;
          },
          setPath: function (p) { path = p; box.dataset.path = p; renumber(); },
          setLabel: function (t) { legend.firstChild.nodeValue = t; }
        };
      }

      // ---- messages next to fields ---------------------------------------------

      function attachMessage(target, text, source) {
        var msg = make("div", "field-error-message", text);
        msg.id = newId();
        msg.dataset.source = source;
        if (source === "client") msg.setAttribute("role", "alert");
        target.classList.add("field-error");
        if (source === "server") target.dataset.serverError = "1";
        if (/^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) target.setAttribute("aria-invalid", "true");
        describe(target, msg.id);

        var anchor;
        if (target === fieldsBox) {
          anchor = null; // first in the box, after messages already there
          var first = fieldsBox.firstElementChild;
          while (first && first.classList.contains("field-error-message")) { anchor = first; first = first.nextElementSibling; }
          if (!anchor) { fieldsBox.insertBefore(msg, fieldsBox.firstChild); return msg; }
        } else if (target.tagName === "FIELDSET") {
          anchor = target.querySelector(":scope > legend") || target.firstElementChild;
        } else {
          anchor = target;
          var lab = target.nextElementSibling;
          if (target.type === "checkbox" && lab && lab.tagName === "LABEL") anchor = lab;
        }
        while (anchor.nextElementSibling && anchor.nextElementSibling.classList.contains("field-error-message")) {
          anchor = anchor.nextElementSibling;
        }
        anchor.after(msg);
        return msg;
      }

      function clearClientError(target) {
        var ids = (target.getAttribute("aria-describedby") || "").split(" ");
        ids.forEach(function (id) {
          var m = id && document.getElementById(id);
          if (m && m.dataset.source === "client") { m.remove(); undescribe(target, id); }
        });
        if (!target.dataset.serverError) {
          target.classList.remove("field-error");
          target.removeAttribute("aria-invalid");
        }
      }

      function clearClientErrors() {
        form.querySelectorAll(".field-error-message[data-source=client]").forEach(function (m) {
          var t = form.querySelector("[aria-describedby~=\"" + m.id + "\"]");
          if (t) clearClientError(t); else m.remove();
        });
      }

      function showClientErrors(errors) {
        errors.forEach(function (e) { attachMessage(e.input, e.message, "client"); });
        if (errors.length) errors[0].input.focus();
      }

      // The element whose data-path is `path`, else the one with the longest path
      // that `path` lies under (a prefix followed by "." or "["), else the box.
      function errorTarget(path) {
        var best = fieldsBox, bestLength = -1;
        var all = [fieldsBox].concat(Array.prototype.slice.call(fieldsBox.querySelectorAll("[data-path]")));
        for (var i = 0; i < all.length; i++) {
          var p = all[i].getAttribute("data-path");
          if (p === path) return all[i];
          var next = path.charAt(p.length);
          if (p.length > bestLength && path.indexOf(p) === 0 && (next === "." || next === "[")) {
            best = all[i];
            bestLength = p.length;
          }
        }
        return best;
      }

      function showServerErrors() {
        var list = document.getElementById("args-errors");
        if (!list) return;
        list.querySelectorAll("li[data-path]").forEach(function (li) {
          var path = li.getAttribute("data-path"), text = li.textContent.trim();
          var target = errorTarget(path);
          // Next to its own field the path is noise; next to an ancestor it says where.
          if (target.getAttribute("data-path") === path && text.indexOf(path + ":") === 0) {
            text = text.slice(path.length + 1).trim();
          }
          attachMessage(target, text, "server");
        });
      }

      // ---- the page --------------------------------------------------------------

      function rebuild(value, hasValue) {
        fieldsBox.textContent = "";
        fieldsBox.classList.remove("field-error");
        fieldsBox.removeAttribute("aria-describedby");
        delete fieldsBox.dataset.serverError;
        fieldsBox.dataset.path = "args";
        if (!hasValue && isObj(schema.default)) { value = schema.default; hasValue = true; }
        root = objectEditor(schema, "args", { label: "", required: true, item: false }, value, hasValue, true);
        fieldsBox.appendChild(root.el);
        showServerErrors();
      }

      function setRaw(on) {
        raw = on;
        if (toggle) toggle.checked = on;
        textarea.hidden = !on;
        fieldsBox.hidden = on;
      }

      // The textarea's JSON as an object for the fields: { value, hasValue } or { problem }.
      function parseTextarea() {
        var text = textarea.value.trim();
        if (text === "") return { hasValue: false };
        var v;
        try { v = JSON.parse(text); } catch (e) { return { problem: "not valid JSON" }; }
        if (!isObj(v)) return { problem: "must be a JSON object to edit as fields" };
        return { value: v, hasValue: true };
      }

      function onToggle() {
        clearClientErrors();
        if (toggle.checked) {
          var errors = [], v = root.read(errors);
          if (v === INVALID) { toggle.checked = false; showClientErrors(errors); return; }
          textarea.value = JSON.stringify(v, null, 2);
          setRaw(true);
          textarea.focus();
        } else {
          var parsed = parseTextarea();
          if (parsed.problem) {
            toggle.checked = true;
            showClientErrors([{ input: textarea, message: parsed.problem }]);
            return;
          }
          rebuild(parsed.value, parsed.hasValue);
          setRaw(false);
        }
      }

      function onSubmit(event) {
        if (raw) return; // the textarea goes as typed
        clearClientErrors();
        var errors = [], v = root.read(errors);
        if (v === INVALID) {
          event.preventDefault();
          showClientErrors(errors);
          return;
        }
        textarea.value = JSON.stringify(v);
      }

      function init() {
        form = document.getElementById("run-form");
        fieldsBox = document.getElementById("args-fields");
        textarea = document.getElementById("args-json");
        toggle = document.getElementById("args-raw-toggle");
        if (!form || !fieldsBox || !textarea) return;

        var schemaEl = document.getElementById("args-schema");
        schema = null;
        if (schemaEl) { try { schema = JSON.parse(schemaEl.textContent); } catch (e) { schema = null; } }
        if (schemaKind(schema) !== "object") { // nothing to render: the textarea is the editor
          textarea.hidden = false;
          fieldsBox.hidden = true;
          if (toggle) {
            toggle.hidden = true;
            var label = toggle.closest("label") || document.querySelector("label[for=\"args-raw-toggle\"]");
            if (label) label.hidden = true;
          }
          return;
        }

        var parsed = parseTextarea();
        rebuild(parsed.value, !!parsed.hasValue);
        form.addEventListener("submit", onSubmit);
        if (toggle) toggle.addEventListener("change", onToggle);
        // Text the fields cannot hold stays in the textarea rather than being lost.
        setRaw(!!parsed.problem || (!!toggle && toggle.checked));
        if (parsed.problem) attachMessage(textarea, parsed.problem, "client");
      }

      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
      else init();
    })();
    """#
}
