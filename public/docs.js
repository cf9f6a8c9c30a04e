// The API page: renders /openapi.json. A file rather than an inline script, so the page's
// Content-Security-Policy allows scripts from this hub only ('self').
fetch('/openapi.json')
  .then((r) => r.json())
  .then((doc) => {
    const main = document.getElementById('ops');
    main.textContent = '';
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const section = document.createElement('section');
        const heading = document.createElement('h2');
        const verb = document.createElement('span');
        verb.className = 'm';
        verb.textContent = method.toUpperCase();
        const code = document.createElement('code');
        code.textContent = path;
        heading.append(verb, code);
        const summary = document.createElement('p');
        summary.textContent = op.summary + (op['x-scope'] ? ` — scope: ${op['x-scope']}` : '');
        section.append(heading, summary);
        if (op.requestBody) {
          const pre = document.createElement('pre');
          pre.textContent = JSON.stringify(op.requestBody.content['application/json'].schema, null, 2);
          section.append(pre);
        }
        main.append(section);
      }
    }
  });
