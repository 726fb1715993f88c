//! Model: what to predict, from which columns, with which template; a layer-stack editor with live
//! shapes and parameter counts; and the training settings.

use egui::RichText;
use wick_core::data::{MissingPolicy, Task};
use wick_core::model::{Activation, Layer, Padding};
use wick_core::train::{ClassWeight, DeviceChoice, OptimizerKind};

use crate::checks::shapes_with_error;
use crate::command::Command;
use crate::host::HostRequest;
use crate::loaded::LoadedData;
use crate::project::{default_train_config, ModelChoice, Template};
use crate::screens::common::{error_label, need_data, ScreenCtx};
use crate::state::AppState;
use crate::theme;

/// The screen edits copies of the model choice and the training settings; what changed goes back as
/// one command each after the frame.
struct Draft {
    model: ModelChoice,
    train: wick_core::train::TrainConfig,
}

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    let mut draft = Draft {
        model: state.project.model.clone(),
        train: state.project.train.clone(),
    };
    draw(cx, ui, &mut draft);
    if draft.model != state.project.model {
        cx.send(Command::SetModelChoice(draft.model));
    }
    if draft.train != state.project.train {
        cx.send(Command::SetTrainConfig(draft.train));
    }
}

fn draw(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, draft: &mut Draft) {
    let state = cx.state;
    ui.horizontal(|ui| {
        ui.heading("Model");
        if state.loaded().is_some() {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                train_button(cx, ui);
                if matches!(state.loaded(), Some(LoadedData::Table { .. })) {
                    find_best_button(cx, ui, draft);
                }
            });
        }
    });
    if need_data(cx, ui, "build a model") {
        return;
    }
    if let Some(e) = cx.view.model_error.clone() {
        error_label(ui, &e);
    }
    let images = state.loaded().is_some_and(LoadedData::is_images);
    if !images {
        target_and_features(cx, ui, draft);
    }
    let task = state.task();
    task_picker(cx, ui, task, draft);
    theme::section(ui, "Template");
    templates(cx, ui, task.unwrap_or(Task::Regression));
    template_settings(cx, ui, draft);
    theme::section(ui, "Training settings");
    hyper_parameters(cx, ui, draft);
}

/// Always at the top of the screen, so it is never scrolled away by a long layer stack.
fn train_button(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    let training = state.training.is_some();
    let button = egui::Button::new(RichText::new("▶  Train").size(16.0).strong())
        .fill(theme::ACCENT.gamma_multiply(0.45));
    if ui
        .add_enabled(!training, button)
        .on_disabled_hover_text("A training is already running; see the Train screen")
        .clicked()
    {
        cx.send(Command::StartTraining);
    }
}

/// The leaderboard: every table template, then a random search, within the budget set beside it.
fn find_best_button(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, draft: &mut Draft) {
    let state = cx.state;
    let button = egui::Button::new(RichText::new("Find the best model").strong());
    let hover = "Tries boosted trees, forests, linear or logistic models and MLPs with varied settings, ranks them on the validation rows, and trains the best; the test rows score only the best";
    if ui
        .add_enabled(state.training.is_none(), button)
        .on_hover_text(hover)
        .clicked()
    {
        cx.send(Command::FindBestModel);
    }
    ui.label("within");
    ui.add(
        egui::DragValue::new(&mut draft.model.search_budget_secs)
            .range(5.0..=3600.0)
            .suffix(" s"),
    )
    .on_hover_text("How long to try models");
}

fn target_and_features(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, draft: &mut Draft) {
    let state = cx.state;
    let Some(LoadedData::Table { summary, .. }) = state.loaded() else {
        return;
    };
    let names: Vec<String> = summary.columns.iter().map(|c| c.name.clone()).collect();
    theme::section(ui, "What should the model predict?");
    ui.horizontal(|ui| {
        ui.label("Target column");
        let current = state
            .project
            .model
            .target
            .clone()
            .unwrap_or_else(|| "choose…".into());
        egui::ComboBox::from_id_salt("target")
            .selected_text(current)
            .show_ui(ui, |ui| {
                for n in &names {
                    if ui
                        .selectable_label(state.project.model.target.as_ref() == Some(n), n)
                        .clicked()
                    {
                        cx.send(Command::SetTarget(n.clone()));
                    }
                }
            });
    });
    if state.project.model.target.is_none() {
        error_label(ui, "Pick the column to predict.");
        return;
    }
    crate::screens::data::personal_choices(cx, ui, summary);
    egui::CollapsingHeader::new(format!(
        "Features: {} of {} columns",
        state.features().len(),
        names.len() - 1
    ))
    .id_salt("features")
    .show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            for n in &names {
                if state.project.model.target.as_ref() == Some(n) {
                    continue;
                }
                let mut used = !state.project.model.excluded_features.contains(n);
                if ui.checkbox(&mut used, n).changed() {
                    if used {
                        draft.model.excluded_features.retain(|f| f != n);
                    } else {
                        draft.model.excluded_features.push(n.clone());
                    }
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label("Missing values");
            let m = &mut draft.model.missing;
            egui::ComboBox::from_id_salt("missing")
                .selected_text(missing_name(*m))
                .show_ui(ui, |ui| {
                    for p in [
                        MissingPolicy::Mean,
                        MissingPolicy::Median,
                        MissingPolicy::MostFrequent,
                        MissingPolicy::Drop,
                    ] {
                        ui.selectable_value(m, p, missing_name(p));
                    }
                });
        });
    });
}

fn missing_name(p: MissingPolicy) -> &'static str {
    match p {
        MissingPolicy::Mean => "fill with the mean",
        MissingPolicy::Median => "fill with the median",
        MissingPolicy::MostFrequent => "fill with the most common value",
        MissingPolicy::Drop => "drop those rows",
    }
}

fn task_picker(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, task: Option<Task>, draft: &mut Draft) {
    let state = cx.state;
    let Some(task) = task else { return };
    // An image folder's sub-folders are its classes: there is no number to predict.
    if state.loaded().is_some_and(LoadedData::is_images) {
        ui.horizontal(|ui| {
            ui.label("Task");
            ui.label(RichText::new("Classification (one class per sub-folder)").strong());
        });
        return;
    }
    let detected = state.detected_task();
    ui.horizontal(|ui| {
        ui.label("Task");
        let mut chosen = task;
        ui.selectable_value(&mut chosen, Task::Regression, "Regression (a number)");
        ui.selectable_value(
            &mut chosen,
            Task::Classification,
            "Classification (a class)",
        );
        if chosen != task {
            draft.model.task_override = if Some(chosen) == detected {
                None
            } else {
                Some(chosen)
            };
            let images = state.loaded().is_some_and(LoadedData::is_images);
            if draft
                .model
                .template
                .fits(state.input_kind(), chosen)
                .is_err()
            {
                // As Command::ChooseTemplate does, on the draft that goes back after this frame.
                draft.model.template = Template::default_for(state.input_kind(), chosen);
                draft.train = default_train_config(images, draft.model.template);
            }
        }
        if state.project.model.task_override.is_none() {
            ui.label(RichText::new("(detected)").weak().small());
        }
    });
}

fn templates(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, task: Task) {
    let state = cx.state;
    ui.horizontal_wrapped(|ui| {
        for t in Template::ALL {
            let fits = t.fits(state.input_kind(), task);
            let selected = state.project.model.template == t;
            let frame = theme::card(ui).stroke(if selected {
                egui::Stroke::new(2.0, theme::ACCENT)
            } else {
                ui.visuals().widgets.noninteractive.bg_stroke
            });
            // A sized allocation, so the wrapping row knows the card's size before placing it.
            ui.allocate_ui(egui::vec2(202.0, 106.0), |ui| {
                frame.show(ui, |ui| {
                    ui.set_width(176.0);
                    ui.set_height(78.0);
                    ui.vertical(|ui| {
                        ui.add_enabled_ui(fits.is_ok(), |ui| {
                            let r = ui.add(egui::Button::selectable(
                                selected,
                                RichText::new(t.title()).strong().size(15.0),
                            ));
                            let r = match fits {
                                Err(why) => r.on_disabled_hover_text(why),
                                Ok(()) => r,
                            };
                            if r.clicked() {
                                cx.send(Command::ChooseTemplate(t));
                            }
                            ui.add(egui::Label::new(RichText::new(t.blurb()).small()).wrap());
                        });
                    });
                })
            });
        }
    });
}

fn template_settings(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, draft: &mut Draft) {
    let m = &mut draft.model;
    match m.template {
        Template::Linear | Template::Logistic => {}
        Template::Polynomial => {
            ui.horizontal(|ui| {
                ui.label("Degree");
                ui.add(egui::Slider::new(&mut m.poly_degree, 2..=6));
            });
        }
        Template::Ridge => {
            ui.horizontal(|ui| {
                ui.label("Penalty (alpha)");
                ui.add(egui::Slider::new(&mut m.ridge_alpha, 0.0..=100.0).logarithmic(true));
            });
        }
        Template::Mlp => mlp_editor(cx, ui, m),
        Template::BoostedTrees => {
            egui::Grid::new("gbdt")
                .num_columns(2)
                .spacing([16.0, 6.0])
                .show(ui, |ui| {
                    ui.label("Trees (at most)");
                    ui.add(egui::Slider::new(&mut m.gbdt_trees, 10..=2000).logarithmic(true));
                    ui.end_row();
                    ui.label("Learning rate");
                    ui.add(
                        egui::Slider::new(&mut m.gbdt_learning_rate, 0.01..=1.0).logarithmic(true),
                    );
                    ui.end_row();
                    ui.label("Depth");
                    ui.add(egui::Slider::new(&mut m.gbdt_max_depth, 1..=12));
                    ui.end_row();
                });
            ui.label(RichText::new("Stops adding trees when the validation rows stop improving (20 trees without a better loss). Missing values and text columns go to the trees as they are.").small().weak());
        }
        Template::Forest => {
            egui::Grid::new("forest")
                .num_columns(2)
                .spacing([16.0, 6.0])
                .show(ui, |ui| {
                    ui.label("Trees");
                    ui.add(egui::Slider::new(&mut m.forest_trees, 10..=1000).logarithmic(true));
                    ui.end_row();
                    ui.label("Depth (0 = no limit)");
                    ui.add(egui::Slider::new(&mut m.forest_max_depth, 0..=40));
                    ui.end_row();
                });
            ui.label(RichText::new("Each tree sees a bootstrap sample of the training rows and a random subset of the features at every split.").small().weak());
        }
        Template::Cnn => cnn_editor(cx, ui, m),
        Template::Transfer => backbone_picker(cx, ui, m),
    }
}

/// The pretrained backbones, with their size, input and whether each is downloaded, or a file.
fn backbone_picker(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, m: &mut ModelChoice) {
    use crate::project::BackboneChoice;
    theme::section(ui, "Pretrained backbone");
    let hub = cx.state.config.hub.as_ref();
    egui::Grid::new("backbones")
        .num_columns(3)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            for b in wick_core::hub::BACKBONES {
                ui.radio_value(&mut m.backbone, BackboneChoice::Hub(b.name.into()), b.title);
                ui.label(
                    RichText::new(format!(
                        "{:.1} M parameters · {1}×{1} input",
                        b.params_millions, b.input_px
                    ))
                    .weak(),
                );
                let here = cx.state.downloaded_backbones.contains(&b.name);
                ui.label(
                    RichText::new(if here {
                        "downloaded".to_string()
                    } else {
                        format!("{} MB download", b.download_mb)
                    })
                    .small()
                    .weak(),
                );
                ui.end_row();
            }
            let file = match &m.backbone {
                BackboneChoice::File(path) => Some(path.clone()),
                BackboneChoice::Hub(_) => None,
            };
            let mut own = file.is_some();
            if ui.radio(own, "Your own file").clicked() {
                own = true;
            }
            let name = file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "a .safetensors file in candle's naming".into());
            ui.label(RichText::new(name).weak());
            if ui.button("Choose .safetensors…").clicked() || (own && file.is_none()) {
                cx.send(Command::Host(HostRequest::PickBackbone));
            }
            ui.end_row();
        });
    if let Some(b) = m.backbone.hub() {
        ui.label(RichText::new(format!("{}: {}.", b.title, b.summary)).small());
        if !cx.state.downloaded_backbones.contains(&b.name) {
            let place = hub
                .map(|h| {
                    format!(
                        "Kept in {} (HF_ENDPOINT names a mirror).",
                        h.cache_dir().display()
                    )
                })
                .unwrap_or_default();
            ui.label(RichText::new(format!("Downloads from the Hugging Face Hub ({}/{}, {} MB) when training starts, once.", b.repo, b.file, b.download_mb)).small().weak())
                .on_hover_text(place);
        }
    }
    let resnet = m
        .backbone
        .hub()
        .is_none_or(|b| b.arch != wick_core::model::BackboneArch::MobileNetV4Small);
    if !resnet {
        m.fine_tune = false;
    }
    ui.add_enabled(resnet, egui::Checkbox::new(&mut m.fine_tune, "Fine-tune the last stage"))
        .on_hover_text("Also train the backbone's last stage, at a tenth of the learning rate. Every epoch then runs the photos through the backbone: slower, often more accurate.")
        .on_disabled_hover_text("Fine-tuning covers the ResNets; MobileNetV4 trains with its backbone frozen.");
    let what = if m.fine_tune {
        "The backbone's last stage and a new head are trained; the rest stays frozen."
    } else {
        "The backbone stays frozen; only a new head is trained."
    };
    ui.label(RichText::new(format!("{what} Photos are scaled to cover 224×224 and centre-cropped, in training, Try it and the endpoint alike.")).small().weak());
}

/// Input width of the tabular model (features after one-hot encoding is not known before fitting, so
/// this counts one input per feature column; shown as an estimate).
fn tabular_inputs(state: &AppState) -> usize {
    state.features().len().max(1)
}

fn mlp_editor(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, m: &mut ModelChoice) {
    let state = cx.state;
    theme::section(ui, "Layers");
    let inputs = tabular_inputs(state);
    let outputs = if state.task() == Some(Task::Classification) {
        state.n_classes().max(2)
    } else {
        1
    };
    let mut action: Option<(usize, &str)> = None;
    egui::Grid::new("mlp_layers")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for h in ["Layer", "Units", "Output", "Parameters", ""] {
                ui.label(RichText::new(h).small().strong());
            }
            ui.end_row();
            ui.label(RichText::new("Input").weak());
            ui.label("");
            ui.label(format!("{inputs}"));
            ui.label("0");
            ui.end_row();
            let mut width = inputs;
            let mut total = 0;
            for (i, units) in m.mlp_hidden.iter_mut().enumerate() {
                ui.label(format!("Dense {}", i + 1));
                ui.add(egui::DragValue::new(units).range(1..=4096));
                let params = width * *units + *units;
                total += params;
                ui.label(format!("{units}"));
                ui.label(format_count(params));
                if let Some(a) = row_buttons(ui) {
                    action = Some((i, a));
                }
                ui.end_row();
                width = *units;
            }
            let params = width * outputs + outputs;
            ui.label(RichText::new("Output").weak());
            ui.label("");
            ui.label(format!("{outputs}"));
            ui.label(format_count(params));
            ui.end_row();
            ui.label(RichText::new("Total").strong());
            ui.label("");
            ui.label("");
            ui.label(RichText::new(format_count(total + params)).strong());
            ui.end_row();
        });
    apply_row_action(&mut m.mlp_hidden, action);
    ui.horizontal(|ui| {
        if ui.button("+ Add layer").clicked() {
            let units = m.mlp_hidden.last().copied().unwrap_or(32);
            m.mlp_hidden.push(units);
        }
        ui.label("Activation");
        egui::ComboBox::from_id_salt("mlp_act")
            .selected_text(format!("{:?}", m.mlp_activation))
            .show_ui(ui, |ui| {
                for a in [
                    Activation::Relu,
                    Activation::Gelu,
                    Activation::Tanh,
                    Activation::Sigmoid,
                    Activation::Silu,
                ] {
                    ui.selectable_value(&mut m.mlp_activation, a, format!("{a:?}"));
                }
            });
        ui.label("Dropout");
        ui.add(egui::Slider::new(&mut m.mlp_dropout, 0.0..=0.8));
    });
}

/// Move up / move down / remove buttons of one layer row; returns the one clicked.
fn row_buttons(ui: &mut egui::Ui) -> Option<&'static str> {
    let mut clicked = None;
    ui.horizontal(|ui| {
        for (label, hover, action) in [
            ("↑", "Move up", "up"),
            ("↓", "Move down", "down"),
            ("×", "Remove", "remove"),
        ] {
            if ui.small_button(label).on_hover_text(hover).clicked() {
                clicked = Some(action);
            }
        }
    });
    clicked
}

fn apply_row_action<T>(rows: &mut Vec<T>, action: Option<(usize, &str)>) {
    match action {
        Some((i, "up")) if i > 0 => rows.swap(i, i - 1),
        Some((i, "down")) if i + 1 < rows.len() => rows.swap(i, i + 1),
        Some((i, "remove")) if i < rows.len() => {
            rows.remove(i);
        }
        _ => {}
    }
}

fn cnn_editor(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, m: &mut ModelChoice) {
    let state = cx.state;
    theme::section(ui, "Layers");
    let Some(input) = state.image_shape() else {
        return;
    };
    let n_classes = state.n_classes().max(2);
    ui.horizontal(|ui| {
        ui.label("Input size");
        let mut side = if m.image_side == 0 {
            input.height
        } else {
            m.image_side
        };
        if ui
            .add(egui::DragValue::new(&mut side).range(4..=256).suffix(" px"))
            .changed()
        {
            m.image_side = side;
        }
        ui.label(
            RichText::new(format!(
                "{}×{}×{}",
                input.height, input.width, input.channels
            ))
            .weak(),
        );
    });
    let layers = m.cnn_layers.clone();
    // Shapes up to the first bad layer; the error names that layer.
    let (shapes, error) = shapes_with_error(input, &layers, n_classes);
    let mut action: Option<(usize, &str)> = None;
    egui::Grid::new("cnn_layers")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for h in ["#", "Layer", "Output shape", "Parameters", ""] {
                ui.label(RichText::new(h).small().strong());
            }
            ui.end_row();
            for (i, layer) in layers.iter().enumerate() {
                ui.label(format!("{}", i + 1));
                let editing = cx.view.editing_layer == Some(i);
                if ui
                    .selectable_label(editing, layer.label())
                    .on_hover_text("Click to edit")
                    .clicked()
                {
                    cx.view.editing_layer = if editing { None } else { Some(i) };
                }
                match (shapes.get(i), &error) {
                    (Some(s), _) => {
                        ui.label(format_shape(&s.output));
                        ui.label(format_count(s.params));
                    }
                    (None, Some((bad, message))) if *bad == i => {
                        ui.colored_label(theme::BAD, "⚠ invalid")
                            .on_hover_text(message.clone());
                        ui.label("");
                    }
                    _ => {
                        ui.label(RichText::new("—").weak());
                        ui.label("");
                    }
                }
                if let Some(a) = row_buttons(ui) {
                    action = Some((i, a));
                }
                ui.end_row();
            }
            if let Some(out) = shapes.get(layers.len()) {
                ui.label("");
                ui.label(RichText::new(format!("Output ({n_classes} classes)")).weak());
                ui.label(format_shape(&out.output));
                ui.label(format_count(out.params));
                ui.end_row();
            }
            if error.is_none() {
                ui.label("");
                ui.label(RichText::new("Total").strong());
                ui.label("");
                ui.label(
                    RichText::new(format_count(shapes.iter().map(|s| s.params).sum())).strong(),
                );
                ui.end_row();
            }
        });
    if let Some((bad, message)) = &error {
        error_label(ui, &format!("Layer {}: {message}", bad + 1));
    }
    if let Some(i) = cx.view.editing_layer {
        if let Some(layer) = m.cnn_layers.get_mut(i) {
            layer_editor(ui, i, layer);
        }
    }
    apply_row_action(&mut m.cnn_layers, action);
    if action.is_some() {
        cx.view.editing_layer = None;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("Add:");
        let relu = Layer::Activation {
            function: Activation::Relu,
        };
        let choices: [(&str, Layer); 8] = [
            (
                "Conv2d",
                Layer::Conv2d {
                    filters: 32,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Same,
                },
            ),
            ("MaxPool2d", Layer::MaxPool2d { size: 2 }),
            ("AvgPool2d", Layer::AvgPool2d { size: 2 }),
            ("BatchNorm", Layer::BatchNorm),
            ("Dropout", Layer::Dropout { rate: 0.25 }),
            ("Flatten", Layer::Flatten),
            ("Dense", Layer::Dense { units: 64 }),
            ("ReLU", relu),
        ];
        for (name, layer) in choices {
            if ui.button(format!("+ {name}")).clicked() {
                let layers = &mut m.cnn_layers;
                // New convolution/pooling layers go before Flatten, where they make sense.
                let at = match layer {
                    Layer::Dense { .. } | Layer::Flatten => layers.len(),
                    _ => layers
                        .iter()
                        .position(|l| matches!(l, Layer::Flatten))
                        .unwrap_or(layers.len()),
                };
                layers.insert(at, layer);
                cx.view.editing_layer = Some(at);
            }
        }
        if ui.button("Reset to default").clicked() {
            m.cnn_layers = wick_core::model::default_cnn_layers();
            cx.view.editing_layer = None;
        }
    });
}

fn layer_editor(ui: &mut egui::Ui, i: usize, layer: &mut Layer) {
    theme::card(ui).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("Layer {}", i + 1)).strong());
            match layer {
                Layer::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                } => {
                    ui.label("Filters");
                    ui.add(egui::DragValue::new(filters).range(0..=1024));
                    ui.label("Kernel");
                    ui.add(egui::DragValue::new(kernel).range(0..=15));
                    ui.label("Stride");
                    ui.add(egui::DragValue::new(stride).range(0..=8));
                    ui.selectable_value(padding, Padding::Same, "same");
                    ui.selectable_value(padding, Padding::Valid, "valid");
                }
                Layer::MaxPool2d { size } | Layer::AvgPool2d { size } => {
                    ui.label("Size");
                    ui.add(egui::DragValue::new(size).range(0..=8));
                }
                Layer::Dropout { rate } => {
                    ui.label("Rate");
                    ui.add(egui::Slider::new(rate, 0.0..=0.9));
                }
                Layer::Dense { units } => {
                    ui.label("Units");
                    ui.add(egui::DragValue::new(units).range(0..=4096));
                }
                Layer::Activation { function } => {
                    for a in [
                        Activation::Relu,
                        Activation::Gelu,
                        Activation::Tanh,
                        Activation::Sigmoid,
                        Activation::Silu,
                    ] {
                        ui.selectable_value(function, a, format!("{a:?}"));
                    }
                }
                Layer::BatchNorm | Layer::Flatten => {
                    ui.label(RichText::new("no settings").weak());
                }
            }
        });
    });
}

fn hyper_parameters(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, draft: &mut Draft) {
    let state = cx.state;
    let template = state.project.model.template;
    let exact = matches!(
        template,
        Template::Linear | Template::Polynomial | Template::Ridge
    ) || template.is_tree();
    let c = &mut draft.train;
    egui::Grid::new("hyper")
        .num_columns(4)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            if !exact {
                ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut c.epochs).range(1..=10_000));
                ui.label("Batch size");
                ui.add(egui::DragValue::new(&mut c.batch_size).range(1..=8192));
                ui.end_row();
                ui.label("Learning rate");
                ui.add(
                    egui::DragValue::new(&mut c.lr)
                        .range(1e-6..=10.0)
                        .speed(0.0005)
                        .max_decimals(6),
                );
                ui.label("Optimiser");
                egui::ComboBox::from_id_salt("optimizer")
                    .selected_text(format!("{:?}", c.optimizer))
                    .show_ui(ui, |ui| {
                        for o in [
                            OptimizerKind::Sgd,
                            OptimizerKind::Adam,
                            OptimizerKind::AdamW,
                        ] {
                            ui.selectable_value(&mut c.optimizer, o, format!("{o:?}"));
                        }
                    });
                ui.end_row();
            }
            ui.label("Validation split");
            let mut valid_pct = (c.split.valid * 100.0).round();
            if ui
                .add(
                    egui::DragValue::new(&mut valid_pct)
                        .range(0.0..=50.0)
                        .suffix(" %"),
                )
                .changed()
            {
                c.split.valid = valid_pct / 100.0;
            }
            ui.label("Test split");
            let mut test_pct = (c.split.test * 100.0).round();
            if ui
                .add(
                    egui::DragValue::new(&mut test_pct)
                        .range(0.0..=50.0)
                        .suffix(" %"),
                )
                .on_hover_text(
                    "0 %: train on every row (a final refit); there is then no test metric",
                )
                .changed()
            {
                c.split.test = test_pct / 100.0;
            }
            ui.end_row();
            ui.label("Seed");
            ui.add(egui::DragValue::new(&mut c.seed));
            if !exact {
                ui.label("Device");
                egui::ComboBox::from_id_salt("device")
                    .selected_text(device_name(c.device))
                    .show_ui(ui, |ui| {
                        let choices = [DeviceChoice::Auto, DeviceChoice::Cpu];
                        for d in choices.into_iter().chain(state.gpus.iter().copied()) {
                            ui.selectable_value(&mut c.device, d, device_name(d));
                        }
                    });
            }
            ui.end_row();
        });
    if matches!(state.loaded(), Some(LoadedData::Table { .. })) {
        let folds = &mut draft.model.cv_folds;
        ui.horizontal(|ui| {
            let name = |k: usize| if k < 2 { "off".to_string() } else { format!("{k} folds") };
            egui::ComboBox::new("cv_folds", "Cross-validate").selected_text(name(*folds)).show_ui(ui, |ui| {
                for k in [0, 3, 5, 10] {
                    ui.selectable_value(folds, k, name(k));
                }
            });
            ui.label(RichText::new("every row tested once by a model that never saw it; then the run trains its own model as usual").small().weak());
        });
    }
    if state.task() == Some(Task::Classification) {
        let mut balanced = c.class_weight == ClassWeight::Balanced;
        let imbalance = crate::checks::imbalance_warning(state);
        if let (Some(warning), false) = (&imbalance, balanced) {
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!("⚠ {warning}."))
                        .small()
                        .color(theme::VALID_COLOUR),
                );
                if ui
                    .button("Balance the classes")
                    .on_hover_text(
                        "Weigh each class's rows so every class counts as much in training",
                    )
                    .clicked()
                {
                    balanced = true;
                }
            });
        }
        ui.checkbox(&mut balanced, "Balance the classes")
            .on_hover_text("A row of class c weighs rows ÷ (classes × rows of c), as scikit-learn's class_weight=\"balanced\"; a rare class is then not drowned out");
        c.class_weight = if balanced {
            ClassWeight::Balanced
        } else {
            ClassWeight::None
        };
    }
    if state.loaded().is_some_and(LoadedData::is_images) {
        augmentation(cx, ui, c);
    }
    if template.is_tree() {
        ui.label(
            RichText::new("Trees train on the CPU, on every core; their settings are above.")
                .small()
                .weak(),
        );
    } else if exact {
        ui.label(
            RichText::new(
                "Solved exactly in one step (least squares) — no epochs or learning rate needed.",
            )
            .small()
            .weak(),
        );
    }
}

/// The augmentations a person can turn on, with the names `Augment::set` takes.
const AUGMENTATIONS: [(&str, &str, &str); 7] = [
    (
        "flip",
        "Flip left–right",
        "Mirror half the images; for photos whose left and right look alike",
    ),
    (
        "vflip",
        "Flip top–bottom",
        "Mirror half the images upside down; for views from above (cells, leaves, parts)",
    ),
    (
        "rotate",
        "Rotate ±15°",
        "Turn each image by a random angle of up to 15°",
    ),
    (
        "crop",
        "Crop and zoom",
        "Zoom into a random crop of 80–100 % of each side",
    ),
    (
        "color",
        "Brightness and contrast",
        "Shift brightness by up to ±0.1 and scale contrast by 0.8–1.2",
    ),
    ("noise", "Noise", "Add Gaussian noise (sd 0.02)"),
    (
        "blur",
        "Blur",
        "Blur half the images slightly (up to 1 pixel)",
    ),
];

/// Augmentation toggles and a strip of one training image as the network will see it.
fn augmentation(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, c: &mut wick_core::train::TrainConfig) {
    theme::section(ui, "Augmentation");
    ui.horizontal_wrapped(|ui| {
        for (name, label, hover) in AUGMENTATIONS {
            let mut on = c.augment.has(name);
            if ui.checkbox(&mut on, label).on_hover_text(hover).changed() {
                c.augment.set(name, on);
            }
        }
    });
    if !c.augment.is_active() {
        ui.label(RichText::new("Random changes to the training images, so the model learns what stays the same; none is on.").small().weak());
        return;
    }
    let preview = &cx.state.augment_preview;
    if preview.augment != Some(c.augment) {
        cx.send(Command::PreviewAugment(c.augment));
    }
    match &preview.images {
        None => {
            ui.spinner();
        }
        Some(Err(e)) => error_label(ui, e),
        Some(Ok(images)) => {
            let key = preview.augment;
            if cx
                .view
                .augment_textures
                .as_ref()
                .is_none_or(|(k, _)| Some(*k) != key)
            {
                let textures = images
                    .iter()
                    .enumerate()
                    .map(|(i, image)| {
                        ui.ctx().load_texture(
                            format!("augment-preview-{i}"),
                            image.clone(),
                            egui::TextureOptions::NEAREST,
                        )
                    })
                    .collect();
                cx.view.augment_textures = key.map(|k| (k, textures));
            }
            if let Some((_, textures)) = &cx.view.augment_textures {
                ui.horizontal(|ui| {
                    for texture in textures {
                        let side = 72.0;
                        let size = texture.size_vec2();
                        let scale = side / size.x.max(size.y).max(1.0);
                        ui.add(egui::Image::new(texture).fit_to_exact_size(size * scale));
                    }
                });
            }
            ui.label(
                RichText::new(format!(
                    "What the network sees: a training image as it is, then {} augmented versions. A CNN sees new ones every epoch; a frozen backbone sees {} per image, drawn once.",
                    images.len().saturating_sub(1),
                    wick_core::train::AUGMENTED_VIEWS
                ))
                .small()
                .weak(),
            );
        }
    }
}

fn device_name(d: DeviceChoice) -> String {
    match d {
        DeviceChoice::Auto => "Auto (GPU if present)".into(),
        DeviceChoice::Cpu => "CPU".into(),
        DeviceChoice::Cuda(i) => format!("CUDA GPU {i}"),
        DeviceChoice::Metal => "Metal GPU".into(),
    }
}

pub fn format_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn format_shape(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(format_count(184_586), "184,586");
        assert_eq!(format_count(12), "12");
        assert_eq!(format_count(1_000), "1,000");
    }

    #[test]
    fn the_first_bad_layer_is_named() {
        let input = wick_core::data::ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let layers = vec![
            Layer::Conv2d {
                filters: 4,
                kernel: 3,
                stride: 1,
                padding: Padding::Same,
            },
            Layer::MaxPool2d { size: 2 },
            Layer::Conv2d {
                filters: 4,
                kernel: 7,
                stride: 1,
                padding: Padding::Valid,
            },
            Layer::Flatten,
        ];
        let (shapes, error) = shapes_with_error(input, &layers, 10);
        assert_eq!(
            shapes.len(),
            2,
            "the two layers before the bad one still show their shapes"
        );
        assert_eq!(shapes[1].output, vec![4, 4, 4]);
        let (bad, message) = error.unwrap_or_default();
        assert_eq!(bad, 2);
        assert!(message.contains("larger than"), "{message}");
    }
}
