// Draws every Plotly figure of a page: the "figures" JSON script maps an element id to {data, layout}.
(function () {
  const source = document.getElementById("figures");
  if (!source) return;
  for (const [id, figure] of Object.entries(JSON.parse(source.textContent))) {
    if (document.getElementById(id)) {
      Plotly.newPlot(id, figure.data, figure.layout, {responsive: true, displaylogo: false});
    }
  }
})();
