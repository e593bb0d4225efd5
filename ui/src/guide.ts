// The guide pane: SCENARIO.md rendered with markdown-it, code highlighted with highlight.js,
// the HTML sanitised with DOMPurify before it reaches the page.
//
// Questions are fenced blocks whose info string starts with `question` (syntax in
// engine/src/api/learn.rs):
//
//     ```question id=feed-p95 figure=load.p95
//     What p95 did your run measure?
//     ---
//     Reference answer (folded until the learner answers).
//     ```
//
// Each gets an answer box; an observation question (`figure=`) also shows the figure the
// learner's own last run measured beside their answer.

import MarkdownIt from 'markdown-it';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import ini from 'highlight.js/lib/languages/ini';
import bash from 'highlight.js/lib/languages/bash';
import 'highlight.js/styles/github.css';
import { put, type RunRecord, type Summary } from './api';

hljs.registerLanguage('rust', rust);
hljs.registerLanguage('sql', sql);
hljs.registerLanguage('toml', ini);
hljs.registerLanguage('bash', bash);
hljs.registerLanguage('sh', bash);

const md = new MarkdownIt({
  html: false,
  linkify: true,
  highlight: (code: string, lang: string) =>
    lang && hljs.getLanguage(lang) ? hljs.highlight(code, { language: lang }).value : '',
});

const defaultFence = md.renderer.rules.fence!;
// The rule's types are loose in markdown-it's declarations; these are what it passes.
md.renderer.rules.fence = (tokens: any[], idx: number, options: any, env: any, self: any) => {
  const token = tokens[idx];
  const info = token.info.trim();
  if (!/^question(\s|$)/.test(info)) return defaultFence(tokens, idx, options, env, self);
  const attrs = Object.fromEntries(
    info.split(/\s+/).slice(1).map((pair: string) => pair.split('=') as [string, string]),
  );
  const [question, reference] = token.content.split(/^---\s*$/m);
  const esc = md.utils.escapeHtml;
  return `<div class="question" data-qid="${esc(attrs.id ?? '')}" data-figure="${esc(attrs.figure ?? '')}">
    <div class="q-text">${md.render(question)}</div>
    ${reference ? `<div class="q-reference">${md.render(reference)}</div>` : ''}
  </div>`;
};

/** Renders `guide` into `target`, with answer boxes bound to `answers` and `history`. */
export function renderGuide(
  target: HTMLElement,
  scenarioId: string,
  guide: string,
  answers: Record<string, string>,
  history: () => RunRecord[],
) {
  target.innerHTML = DOMPurify.sanitize(md.render(guide));
  target.querySelectorAll<HTMLElement>('.question').forEach((box) => {
    const id = box.dataset.qid!;
    const figure = box.dataset.figure || null;
    const reference = box.querySelector<HTMLElement>('.q-reference');
    reference?.remove();

    const input = document.createElement('textarea');
    input.className = 'q-answer';
    input.rows = 2;
    input.placeholder = figure ? 'Your answer (what do you expect, or what did you see?)' : 'Your answer';
    input.value = answers[id] ?? '';
    const save = document.createElement('button');
    save.textContent = 'Save answer';
    const measured = document.createElement('p');
    measured.className = 'q-measured';
    const folded = document.createElement('details');
    folded.className = 'q-ref';
    if (reference) {
      folded.innerHTML = '<summary>Reference answer</summary>';
      folded.append(...reference.childNodes);
    }

    const refresh = () => {
      const answer = answers[id];
      // Reference answers stay folded, and hidden, until the learner has answered.
      folded.hidden = !reference || !answer;
      measured.hidden = !figure || !answer;
      if (figure && answer) measured.textContent = compare(answer, figure, history());
    };
    save.addEventListener('click', async () => {
      save.disabled = true;
      try {
        const saved = await put<Record<string, string>>(
          `/scenarios/${scenarioId}/answers/${encodeURIComponent(id)}`,
          { answer: input.value },
        );
        Object.keys(answers).forEach((k) => delete answers[k]);
        Object.assign(answers, saved);
        refresh();
      } catch (e) {
        measured.hidden = false;
        measured.textContent = `Could not save the answer: ${(e as Error).message}`;
      } finally {
        save.disabled = false;
      }
    });
    box.append(input, save, measured, folded);
    refresh();
    box.addEventListener('sdlab:history', refresh);
  });
}

/** Tells every observation question that the run history changed. */
export function historyChanged(target: HTMLElement) {
  target.querySelectorAll('.question').forEach((q) => q.dispatchEvent(new Event('sdlab:history')));
}

/** "You wrote 2 s; your last load run measured p95 = 1.7 s". */
function compare(answer: string, figure: string, runs: RunRecord[]): string {
  const [kind, field] = figure.split('.');
  const last = [...runs].reverse().find((r) => r.kind === kind && r.summary);
  const name = field.replace('_', ' ');
  if (!last?.summary) return `You wrote ${answer}. Run ${kind === 'load' ? 'load' : 'a check'} to measure ${name} yourself.`;
  return `You wrote ${answer}; your last ${kind === 'load' ? 'load run' : 'check'} measured ${name} = ${figureValue(last.summary, field)}.`;
}

export function figureValue(s: Summary, field: string): string {
  switch (field) {
    case 'error_rate': return `${(s.error_rate * 100).toFixed(1)} %`;
    case 'achieved_rate': return `${s.achieved_rate.toFixed(1)} requests/s`;
    case 'max': return duration(s.latency.max_ms);
    default: return duration((s.latency as any)[`${field}_ms`]);
  }
}

export function duration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

/** Markdown to sanitised HTML (solution notes, hints). */
export function markdown(text: string): string {
  return DOMPurify.sanitize(md.render(text));
}
